// AOTInductor packages for the torch backend: a model compiled by Inductor ahead of time
// (analysis/reference/aoti_export.py writes the .pt2 file), loaded and run from C++ with
// libtorch's AOTIModelPackageLoader. Part of the torch backend's C++ shim, compiled by build.rs
// with every libtorch (it needs no CUDA headers); used only through src/backend/torch/shim.rs.
//
// Tensors cross the boundary as tch's do: an `at::Tensor*` allocated with `new`, which tch
// wraps and frees with `delete` (torch-sys's at_free).

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "guarded.h"

struct jb_aoti {
  torch::inductor::AOTIModelPackageLoader loader;
};

extern "C" {

// Loads the package at `path` for CUDA device `device` (-1 for a CPU package). Returns null
// with the reason in `err` when the file is not a package this libtorch can run.
jb_aoti* jb_aoti_load(const char* path, int device, char* err, size_t err_len) {
  std::unique_ptr<jb_aoti> model;
  const int rc = jb::guarded(err, err_len, [&] {
    // run_single_threaded: the package's runner keeps no thread-safety machinery of its own
    // (one caller, the runner's thread), which also lets a CUDA graph capture its run.
    model.reset(new jb_aoti{torch::inductor::AOTIModelPackageLoader(
        path, "model", /*run_single_threaded=*/true, /*num_runners=*/1,
        static_cast<c10::DeviceIndex>(device))});
  });
  return rc == 0 ? model.release() : nullptr;
}

// Runs the package on `input` (on the package's device, the current stream on a GPU) and
// hands its only output to the caller in `*output`.
int jb_aoti_run(jb_aoti* model, const at::Tensor* input, at::Tensor** output, char* err,
                size_t err_len) {
  *output = nullptr;
  return jb::guarded(err, err_len, [&] {
    std::vector<at::Tensor> outputs = model->loader.run({*input});
    if (outputs.size() != 1) {
      throw std::runtime_error("the package returned " + std::to_string(outputs.size()) +
                               " outputs, not the scores alone");
    }
    *output = new at::Tensor(std::move(outputs[0]));
  });
}

// The loader's destructor removes the package's unpacked files and does not throw.
void jb_aoti_free(jb_aoti* model) { delete model; }

}  // extern "C"
