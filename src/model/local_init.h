// The "local" initialisation (model.init = "local"): a locality prior for every layer's attention,
// so that masked-LM training starts reading a token's neighbours at step 0 instead of spending its
// first millions of tokens on the unigram plateau. It only chooses starting values of BERT's own
// parameters: the architecture, and so the export to transformers, are unchanged.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "model/bert_config.h"

namespace bert::model {

// The neighbour offset head h starts attending to, counting the heads of all layers in order (layer
// l's head j is head l * num_heads + j): -1, +1, -2, +2, -3, +3, -4, +4, then again from -1.
int64_t local_head_offset(int64_t head);

// Overwrites, in place and without autograd:
//  - position_embeddings [P, H]: columns 0..2K-1 hold (cos(p w_k), sin(p w_k)) for K = head_size / 2
//    frequencies w_k drawn uniformly in (0, pi) from `gen`, scaled so a position vector has the norm
//    of a token embedding drawn at initializer_range (initializer_range * sqrt(H)); the other columns 0.
//    sum_k cos((p - q) w_k) then peaks sharply at p = q (K against about sqrt(K / 2) elsewhere).
//  - query/key weights [H, H] and biases [H] of the first layer: head h's query rows read the
//    positional columns through a rotation by local_head_offset(h) * w_k (so q_p is the position
//    vector of p + offset) and its key rows read them unchanged (k_q is the position vector of q);
//    every other weight of those rows is 0. After the embeddings' LayerNorm, head h's score of key q
//    for query p is about H / (2 sqrt(d)) * sum_k cos((p + offset - q) w_k): a sharp peak at
//    q = p + offset.
// Throws Error(kUsage) if the head size is below 2.
// The query/key parameters of a later layer that starts local too.
struct LocalLayer {
  torch::Tensor query_weight, query_bias, key_weight, key_bias;
};

// `more_layers` (layers 1, 2, ...) get the same construction with the offsets that follow the first
// layer's: layer l's head h starts on local_head_offset(l * num_heads + h).
void apply_local_init(torch::Tensor position_embeddings, torch::Tensor query_weight, torch::Tensor query_bias,
                      torch::Tensor key_weight, torch::Tensor key_bias, const BertConfig& config,
                      at::Generator& gen, const std::vector<LocalLayer>& more_layers = {});

// The query/key rows of heads first_head.. first_head + num_heads - 1 on positional frequencies `freq`.
void set_local_heads(torch::Tensor query_weight, torch::Tensor query_bias, torch::Tensor key_weight,
                     torch::Tensor key_bias, const torch::Tensor& freq, const BertConfig& config, int64_t first_head);

}  // namespace bert::model
