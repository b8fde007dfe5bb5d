// Tagged point-to-point operations of the Communicator.
//
// Protocol. The n-th message (n counted per direction, peer and tag, from 0) from A to B with
// user tag t uses two transport tags:
//   header: bit 63 | (n mod 2^30) << 32 | t        (only with verify_collectives)
//   data:   bit 63 | bit 62 | (n mod 2^30) << 32 | t
// The sender posts both at once; the receiver posts the header receive at once and the data
// receive only after the header (dtype, count) matched its own arguments, so a message of the
// wrong size never reaches a receive (the transport cannot take a message larger than the
// posted receive). On a mismatch the receiver drains the message into a temporary buffer of the
// size the header announces and fails with MismatchError naming both sides; the sender's
// operation completes normally, and the communicator stays usable.
// Distinct numbers per message keep messages with the same tag matched in order even though
// the data receives are posted later, from different threads.
#include <cstring>

#include "comm/communicator_impl.h"

namespace dtrain {

namespace {

constexpr uint64_t kP2PBit = uint64_t{1} << 63;
constexpr uint64_t kDataBit = uint64_t{1} << 62;
constexpr uint32_t kHeaderMagic = 0x64747270;  // "dtrp"

struct P2PHeader {
  uint32_t magic = kHeaderMagic;
  uint8_t version = 1;
  uint8_t dtype = 0;
  uint16_t reserved = 0;
  uint32_t tag = 0;
  uint32_t reserved2 = 0;
  uint64_t count = 0;
  uint8_t padding[40] = {};
};
static_assert(sizeof(P2PHeader) == 64);

uint64_t p2p_tag(uint64_t number, uint32_t tag, bool data) {
  return kP2PBit | (data ? kDataBit : 0) | ((number & ((uint64_t{1} << 30) - 1)) << 32) | tag;
}

std::string describe(DType dtype, uint64_t count) {
  return std::string(dtype_name(dtype)) + " x " + std::to_string(count);
}

}  // namespace

std::shared_ptr<Work> Communicator::Impl::send(const void* data, size_t count, DType dtype, int dst,
                                               uint32_t tag) {
  auto work = std::make_shared<Work>("send to rank " + std::to_string(dst) + " tag " + std::to_string(tag));
  const size_t bytes = count * dtype_size(dtype);
  const uint64_t number = next_p2p_number(sends_numbered_, dst, tag);
  const Deadline deadline = Deadline::after(options_.timeout);
  auto header = std::make_shared<P2PHeader>();
  header->dtype = static_cast<uint8_t>(dtype);
  header->tag = tag;
  header->count = count;
  auto ops = std::make_shared<std::vector<std::unique_ptr<TransportOp>>>();
  auto start = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++unfinished_;
  }
  auto posting = guarded([&] {
    check_usable();
    if (options_.verify_collectives) {
      ops->push_back(transport_->isend(header.get(), sizeof(P2PHeader), dst, p2p_tag(number, tag, false)));
      bytes_sent_ += sizeof(P2PHeader);
    }
    ops->push_back(transport_->isend(data, bytes, dst, p2p_tag(number, tag, true)));
    bytes_sent_ += bytes;
  });
  if (posting) {
    finish(*work, posting);
    return work;
  }
  p2p_pool_.run([this, work, header, ops, deadline, start] {
    auto failure = guarded([&] {
      for (auto& op : *ops) op->wait(deadline);
    });
    ops->clear();
    record(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    finish(*work, failure);
  });
  return work;
}

std::shared_ptr<Work> Communicator::Impl::recv(void* data, size_t count, DType dtype, int src,
                                               uint32_t tag) {
  auto work = std::make_shared<Work>("recv from rank " + std::to_string(src) + " tag " + std::to_string(tag));
  const size_t bytes = count * dtype_size(dtype);
  const uint64_t number = next_p2p_number(recvs_numbered_, src, tag);
  const Deadline deadline = Deadline::after(options_.timeout);
  auto header = std::make_shared<P2PHeader>();
  auto first = std::make_shared<std::unique_ptr<TransportOp>>();
  const bool verify = options_.verify_collectives;
  auto start = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++unfinished_;
  }
  auto posting = guarded([&] {
    check_usable();
    if (verify) {
      *first = transport_->irecv(header.get(), sizeof(P2PHeader), src, p2p_tag(number, tag, false));
      bytes_received_ += sizeof(P2PHeader);
    } else {
      *first = transport_->irecv(data, bytes, src, p2p_tag(number, tag, true));
      bytes_received_ += bytes;
    }
  });
  if (posting) {
    finish(*work, posting);
    return work;
  }
  p2p_pool_.run([=, this] {
    auto failure = guarded([&] {
          (*first)->wait(deadline);
          first->reset();
          if (!verify) return;
          if (header->magic != kHeaderMagic || header->version != 1) {
            throw CorruptError("recv from rank " + std::to_string(src) + " tag " + std::to_string(tag) +
                               ": malformed point-to-point header");
          }
          auto sent_dtype = static_cast<DType>(header->dtype);
          if (sent_dtype != dtype || header->count != count) {
            // Drain the message as announced so the sender completes, then report.
            std::vector<char> sink(header->count * dtype_size(sent_dtype));
            auto drain = transport_->irecv(sink.data(), sink.size(), src, p2p_tag(number, tag, true));
            drain->wait(deadline);
            throw MismatchError("point-to-point mismatch on tag " + std::to_string(tag) + ": rank " +
                                std::to_string(src) + " sent " + describe(sent_dtype, header->count) +
                                " but rank " + std::to_string(transport_->rank()) + " expected " +
                                describe(dtype, count));
          }
          auto op = transport_->irecv(data, bytes, src, p2p_tag(number, tag, true));
          bytes_received_ += bytes;
          op->wait(deadline);
        });
    first->reset();
    record(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    finish(*work, failure);
  });
  return work;
}

}  // namespace dtrain
