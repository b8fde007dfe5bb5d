// A small decoder-only transformer language model (GPT-style, pre-LayerNorm).
//
//   tokens int64 [B, T] (T <= context)
//   h = tok_emb(tokens) + pos_emb[0:T]                       [B, T, D]
//   L times: h = h + attn(ln1(h)); h = h + mlp(ln2(h))       [B, T, D]
//     attn: causal multi-head self-attention, H heads of D/H; position t attends to 0..t only
//     mlp:  Linear(D, R*D), GELU, Linear(R*D, D)
//   logits = head(ln_f(h))                                    [B, T, V]
//
// No dropout, so forward is deterministic. Parameters are initialised from `seed` alone:
// Linear and embedding weights ~ N(0, 0.02), the output projections of each residual branch
// ~ N(0, 0.02 / sqrt(2L)), biases 0, LayerNorm weight 1 and bias 0.
// Parameter count: V*D + C*D + L*(12*D*D + 13*D) with R = 4 (in general L*(4*D*D + 2*R*D*D +
// 9*D + R*D)) + 2*D + D*V + V, for context C.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace dtrain {

struct TransformerOptions {
  int64_t vocab_size = 0;  // V, required
  int64_t context = 64;    // C, longest sequence
  int64_t layers = 2;      // L
  int64_t width = 128;     // D, a multiple of heads
  int64_t heads = 4;       // H
  int64_t mlp_ratio = 4;   // R
  uint64_t seed = 0;
};

// Causal multi-head self-attention over [B, T, D].
class CausalSelfAttentionImpl : public torch::nn::Module {
 public:
  CausalSelfAttentionImpl(int64_t width, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x);  // [B, T, D] -> [B, T, D]
  torch::nn::Linear qkv{nullptr};                 // D -> 3D (queries, keys, values)
  torch::nn::Linear proj{nullptr};                // D -> D (residual branch output)
  int64_t heads;
};
TORCH_MODULE(CausalSelfAttention);

// One pre-LayerNorm block: x + attn(ln1(x)), then + mlp(ln2(.)).
class TransformerBlockImpl : public torch::nn::Module {
 public:
  TransformerBlockImpl(int64_t width, int64_t heads, int64_t mlp_ratio);
  torch::Tensor forward(const torch::Tensor& x);  // [B, T, D] -> [B, T, D]
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  CausalSelfAttention attn{nullptr};
  torch::nn::Linear fc1{nullptr};  // D -> R*D
  torch::nn::Linear fc2{nullptr};  // R*D -> D (residual branch output)
};
TORCH_MODULE(TransformerBlock);

class TransformerLmImpl : public torch::nn::Module {
 public:
  // Throws InvalidArgumentError for non-positive sizes or width % heads != 0.
  explicit TransformerLmImpl(const TransformerOptions& options);
  // tokens: int64 [B, T] with ids in [0, V) and 1 <= T <= context -> logits [B, T, V].
  // Throws InvalidArgumentError when T > context or the input is not [B, T].
  torch::Tensor forward(const torch::Tensor& tokens);
  // Re-draws every parameter from `seed` (see the file comment).
  void reset_parameters(uint64_t seed);

  const TransformerOptions& options() const { return options_; }
  torch::nn::Embedding tok_emb{nullptr};  // [V, D]
  torch::Tensor pos_emb;                  // [C, D]
  torch::nn::ModuleList blocks{nullptr};  // L TransformerBlock
  torch::nn::LayerNorm ln_f{nullptr};
  torch::nn::Linear head{nullptr};  // D -> V

 private:
  TransformerOptions options_;
};
TORCH_MODULE(TransformerLm);

}  // namespace dtrain
