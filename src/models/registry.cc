// make_model, fit_to_dataset, wrap_module and the task losses (see models.h).
#include <ATen/CPUGeneratorImpl.h>

#include <string>

#include "dtrain/error.h"
#include "dtrain/model_zoo.h"
#include "dtrain/models.h"
#include "dtrain/transformer.h"

namespace dtrain {
namespace {

// Restores torch's global CPU generator on scope exit. torch::nn layers draw their default
// initialisation from it in their constructors before our seeded re-initialisation overwrites it;
// this keeps make_model from disturbing a caller's random stream.
class GlobalRngRestorer {
 public:
  GlobalRngRestorer() : state_(at::detail::getDefaultCPUGenerator().get_state()) {}
  ~GlobalRngRestorer() {
    at::Generator global = at::detail::getDefaultCPUGenerator();  // a handle to the same generator
    global.set_state(state_);
  }
  GlobalRngRestorer(const GlobalRngRestorer&) = delete;
  GlobalRngRestorer& operator=(const GlobalRngRestorer&) = delete;

 private:
  torch::Tensor state_;  // a uint8 tensor holding the generator state
};

template <typename Holder>
ModelHandle handle_for(std::string name, std::string task, Holder holder) {
  return wrap_module(std::move(name), holder, {}, std::move(task));
}

std::string joined_model_names() {
  std::string out;
  for (const std::string& n : model_names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void require_task(const Dataset& data, std::string_view task, const std::string& model) {
  if (data.task != task) {
    throw InvalidArgumentError("model " + model + " needs a " + std::string(task) +
                               " dataset, but " + data.name + " is " + data.task);
  }
}

}  // namespace

int64_t ModelHandle::num_parameters() const {
  int64_t n = 0;
  if (module) {
    for (const torch::Tensor& p : module->parameters()) n += p.numel();
  }
  return n;
}

std::vector<std::string> model_names() {
  return {"linreg", "logreg", "mlp", "cnn", "transformer"};
}

ModelHandle make_model(const ModelOptions& o) {
  const GlobalRngRestorer restore_global_rng;
  if (o.name == "linreg") return handle_for(o.name, "regression", LinearRegression(o.seed));
  if (o.name == "logreg") {
    return handle_for(o.name, "classification",
                      LogisticRegression(o.in_features, o.num_classes, o.seed));
  }
  if (o.name == "mlp") {
    return handle_for(o.name, "classification",
                      Mlp(o.in_features, o.hidden, o.num_classes, o.seed));
  }
  if (o.name == "cnn") {
    return handle_for(o.name, "classification",
                      LeNet(o.in_channels, o.image_size, o.num_classes, o.seed));
  }
  if (o.name == "transformer") {
    TransformerOptions t;
    t.vocab_size = o.vocab_size;
    t.context = o.context;
    t.layers = o.layers;
    t.width = o.width;
    t.heads = o.heads;
    t.mlp_ratio = o.mlp_ratio;
    t.seed = o.seed;
    return handle_for(o.name, "lm", TransformerLm(t));
  }
  throw InvalidArgumentError("unknown model \"" + o.name + "\" (known: " + joined_model_names() +
                             ")");
}

ModelOptions fit_to_dataset(ModelOptions o, const Dataset& data) {
  if (!data.inputs.defined()) throw InvalidArgumentError("fit_to_dataset: the dataset is empty");
  const torch::IntArrayRef in = data.inputs.sizes();  // [N, ...]
  if (o.name == "linreg") {
    require_task(data, "regression", o.name);
    if (in.size() != 2 || in[1] != 1) {
      throw InvalidArgumentError("model linreg needs inputs [N, 1], dataset " + data.name +
                                 " has another shape");
    }
  } else if (o.name == "logreg" || o.name == "mlp") {
    require_task(data, "classification", o.name);
    o.in_features = 1;
    for (size_t i = 1; i < in.size(); ++i) o.in_features *= in[i];
    o.num_classes = data.num_classes;
  } else if (o.name == "cnn") {
    require_task(data, "classification", o.name);
    if (in.size() != 4 || in[2] != in[3]) {
      throw InvalidArgumentError("model cnn needs square images [N, C, S, S], dataset " +
                                 data.name + " has another shape");
    }
    o.in_channels = in[1];
    o.image_size = in[2];
    o.num_classes = data.num_classes;
  } else if (o.name == "transformer") {
    require_task(data, "lm", o.name);
    o.vocab_size = data.num_classes;
    o.context = in[1];
  } else {
    throw InvalidArgumentError("unknown model \"" + o.name + "\" (known: " + joined_model_names() +
                               ")");
  }
  return o;
}

ModelHandle wrap_module(std::string name, std::shared_ptr<torch::nn::Module> module,
                        ForwardFn forward, LossFn loss, std::string task) {
  if (!module) throw InvalidArgumentError("wrap_module: module is null");
  if (!forward) throw InvalidArgumentError("wrap_module: forward is empty");
  if (!loss) loss = loss_for_task(task);
  return ModelHandle{std::move(name), std::move(task), std::move(module), std::move(forward),
                     std::move(loss)};
}

torch::Tensor regression_loss(const torch::Tensor& output, const torch::Tensor& target) {
  return torch::mse_loss(output, target);
}

torch::Tensor classification_loss(const torch::Tensor& output, const torch::Tensor& target) {
  return torch::cross_entropy_loss(output, target);
}

torch::Tensor lm_loss(const torch::Tensor& output, const torch::Tensor& target) {
  return torch::cross_entropy_loss(output.reshape({-1, output.size(-1)}), target.reshape({-1}));
}

LossFn loss_for_task(std::string_view task) {
  if (task == "regression") return regression_loss;
  if (task == "classification") return classification_loss;
  if (task == "lm") return lm_loss;
  throw InvalidArgumentError("no loss for task \"" + std::string(task) +
                             "\" (known: regression, classification, lm); pass a loss function");
}

int64_t count_correct(const torch::Tensor& output, const torch::Tensor& target,
                      std::string_view task) {
  if (task != "classification" && task != "lm") {
    throw InvalidArgumentError("count_correct: task \"" + std::string(task) +
                               "\" has no class predictions");
  }
  return output.argmax(-1).eq(target).sum().item<int64_t>();
}

}  // namespace dtrain
