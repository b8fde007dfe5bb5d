// The decoder-only transformer language model of transformer.h.
#include "dtrain/transformer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "dtrain/error.h"

namespace dtrain {

CausalSelfAttentionImpl::CausalSelfAttentionImpl(int64_t width, int64_t heads) : heads(heads) {
  qkv = register_module("qkv", torch::nn::Linear(width, 3 * width));
  proj = register_module("proj", torch::nn::Linear(width, width));
}

torch::Tensor CausalSelfAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), t = x.size(1), d = x.size(2), hd = d / heads;
  // [B, T, 3D] -> three [B, H, T, hd]
  std::vector<torch::Tensor> parts = qkv->forward(x).split(d, /*dim=*/2);
  auto to_heads = [&](const torch::Tensor& p) { return p.view({b, t, heads, hd}).transpose(1, 2); };
  torch::Tensor q = to_heads(parts[0]), k = to_heads(parts[1]), v = to_heads(parts[2]);
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(hd));
  // future[i][j] = j > i: position i may not see position j.
  torch::Tensor future =
      torch::ones({t, t}, torch::TensorOptions().dtype(torch::kBool).device(x.device())).triu(1);
  scores = scores.masked_fill(future, -std::numeric_limits<float>::infinity());
  torch::Tensor y = torch::matmul(torch::softmax(scores, -1), v);  // [B, H, T, hd]
  return proj->forward(y.transpose(1, 2).contiguous().view({b, t, d}));
}

TransformerBlockImpl::TransformerBlockImpl(int64_t width, int64_t heads, int64_t mlp_ratio) {
  ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  attn = register_module("attn", CausalSelfAttention(width, heads));
  ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  fc1 = register_module("fc1", torch::nn::Linear(width, mlp_ratio * width));
  fc2 = register_module("fc2", torch::nn::Linear(mlp_ratio * width, width));
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = x + attn->forward(ln1->forward(x));
  return h + fc2->forward(torch::gelu(fc1->forward(ln2->forward(h))));
}

TransformerLmImpl::TransformerLmImpl(const TransformerOptions& options) : options_(options) {
  const TransformerOptions& o = options_;
  for (auto [value, what] : {std::pair{o.vocab_size, "vocab_size"},
                             {o.context, "context"},
                             {o.layers, "layers"},
                             {o.width, "width"},
                             {o.heads, "heads"},
                             {o.mlp_ratio, "mlp_ratio"}}) {
    if (value < 1) {
      throw InvalidArgumentError(std::string("transformer ") + what + " must be >= 1, got " +
                                 std::to_string(value));
    }
  }
  if (o.width % o.heads != 0) {
    throw InvalidArgumentError("transformer width " + std::to_string(o.width) +
                               " is not a multiple of heads " + std::to_string(o.heads));
  }
  tok_emb = register_module("tok_emb", torch::nn::Embedding(o.vocab_size, o.width));
  pos_emb = register_parameter("pos_emb", torch::zeros({o.context, o.width}));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.layers; ++i) {
    blocks->push_back(TransformerBlock(o.width, o.heads, o.mlp_ratio));
  }
  ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.width})));
  head = register_module("head", torch::nn::Linear(o.width, o.vocab_size));
  reset_parameters(o.seed);
}

void TransformerLmImpl::reset_parameters(uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  constexpr double kStd = 0.02;
  const double residual_std = kStd / std::sqrt(2.0 * static_cast<double>(options_.layers));
  // Draw order is fixed (registration order), so the parameters depend only on the seed.
  tok_emb->weight.normal_(0.0, kStd, gen);
  pos_emb.normal_(0.0, kStd, gen);
  for (size_t i = 0; i < blocks->size(); ++i) {
    auto block = blocks->ptr<TransformerBlockImpl>(i);
    for (torch::nn::LayerNormImpl* ln : {block->ln1.get(), block->ln2.get()}) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    }
    block->attn->qkv->weight.normal_(0.0, kStd, gen);
    block->attn->qkv->bias.zero_();
    block->attn->proj->weight.normal_(0.0, residual_std, gen);
    block->attn->proj->bias.zero_();
    block->fc1->weight.normal_(0.0, kStd, gen);
    block->fc1->bias.zero_();
    block->fc2->weight.normal_(0.0, residual_std, gen);
    block->fc2->bias.zero_();
  }
  ln_f->weight.fill_(1.0);
  ln_f->bias.zero_();
  head->weight.normal_(0.0, kStd, gen);
  head->bias.zero_();
}

torch::Tensor TransformerLmImpl::forward(const torch::Tensor& tokens) {
  if (tokens.dim() != 2 || tokens.size(1) < 1 || tokens.size(1) > options_.context) {
    std::ostringstream msg;
    msg << "transformer: expected tokens [B, T] with 1 <= T <= " << options_.context << ", got "
        << tokens.sizes();
    throw InvalidArgumentError(msg.str());
  }
  const int64_t t = tokens.size(1);
  torch::Tensor h = tok_emb->forward(tokens) + pos_emb.slice(0, 0, t);  // [B, T, D]
  for (size_t i = 0; i < blocks->size(); ++i) h = blocks->ptr<TransformerBlockImpl>(i)->forward(h);
  return head->forward(ln_f->forward(h));  // [B, T, V]
}

}  // namespace dtrain
