// CUDA graphs for the torch backend: capture of a forward pass and its replay, over libtorch's
// at::cuda::CUDAGraph (tch has no API for graphs or streams). Part of the torch backend's C++
// shim, compiled by build.rs with the `cc` crate against the headers of the libtorch that
// torch-sys links, where the CUDA runtime headers are found; used only through
// src/backend/torch/shim.rs.
//
// Rules this file keeps, and why:
// - No C++ exception may unwind into Rust (undefined behaviour): every entry point catches
//   everything and writes the message into the caller's buffer.
// - The forward pass itself is Rust (tch) code, called back through `jb_body` while the capture
//   stream is current; the Rust side catches its own panics, so none crosses this file either.
// - Streams and events go through c10::Stream, c10::StreamGuard and c10::Event (libc10's
//   device-generic interface) rather than the CUDA-specific inline helpers, which call the CUDA
//   runtime directly and would need libcudart on the link line.

#include <ATen/cuda/CUDAGraph.h>
#include <c10/core/Event.h>
#include <c10/core/Stream.h>
#include <c10/core/StreamGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <memory>
#include <stdexcept>

#include "guarded.h"

// A subclass only to reach two protected members after a failed capture (`abandon`).
struct jb_graph : at::cuda::CUDAGraph {
  // capture_begin tells the caching allocator to send the capture's allocations to the
  // graph's private pool, through a filter that points at this object; capture_end ends that
  // only when cudaStreamEndCapture succeeds. After a failed capture the filter would outlive
  // the object (a dangling pointer called on every later allocation) and the pool would never
  // be released: end both here. Either call may find nothing to do and throw; that is fine.
  void abandon() noexcept {
    if (capture_dev_ == UNDEFINED_DEVICE) {
      return;  // capture_begin failed before it touched the allocator
    }
    try {
      c10::cuda::CUDACachingAllocator::endAllocateToPool(capture_dev_, mempool_id_);
    } catch (...) {
    }
    if (!capture_ended_) {
      try {
        c10::cuda::CUDACachingAllocator::releasePool(capture_dev_, mempool_id_);
      } catch (...) {
      }
    }
  }
};

extern "C" {
// The Rust forward pass: 0 on success; on failure the Rust side keeps its own error.
typedef int (*jb_body)(void* ctx);
}


extern "C" {

// Captures `body` on CUDA device `device` into a new graph, after `warmup` uncaptured calls of
// `body` on the same side stream (as PyTorch's torch.cuda.graphs recipe does: lazy
// initialisation such as cuBLAS workspaces for that stream happens outside the capture).
// Returns the graph, or null with the reason in `err`; `*body_failed` is 1 when the reason is
// that `body` failed (its error is then the caller's to report).
jb_graph* jb_graph_capture(int device, int warmup, jb_body body, void* ctx, int* body_failed,
                           char* err, size_t err_len) {
  *body_failed = 0;
  std::unique_ptr<jb_graph> graph;
  const int rc = jb::guarded(err, err_len, [&] {
    const auto index = static_cast<c10::DeviceIndex>(device);
    // Capture needs a stream other than the default one; the side stream first waits for
    // what the current stream has queued (the input's copy and the eager warm-up).
    const c10::Stream current = c10::cuda::getCurrentCUDAStream(index);
    const c10::Stream side = c10::cuda::getStreamFromPool(false, index);
    c10::Event queued(c10::DeviceType::CUDA);
    queued.record(current);
    queued.block(side);
    graph = std::make_unique<jb_graph>();
    {
      c10::StreamGuard on_side(side);
      for (int i = 0; i < warmup; ++i) {
        if (body(ctx) != 0) {
          *body_failed = 1;
          throw std::runtime_error("the forward pass failed on the capture stream");
        }
      }
      try {
        graph->capture_begin();
        if (body(ctx) != 0) {
          *body_failed = 1;
          throw std::runtime_error("the forward pass failed during capture");
        }
        graph->capture_end();
      } catch (...) {
        // Ends the stream's capture if it is still open, so the stream and the allocator are
        // usable again by the eager fallback; its own error adds nothing to the first one.
        try {
          graph->capture_end();
        } catch (...) {
        }
        graph->abandon();
        throw;
      }
    }
    // Work queued later on the current stream (replays, copies) comes after the side
    // stream's warm-up passes.
    c10::Event captured(c10::DeviceType::CUDA);
    captured.record(side);
    captured.block(current);
  });
  return rc == 0 ? graph.release() : nullptr;
}

// Replays the graph on the current stream of its device (the default stream, where the
// backend's copies run, so the replay follows the input's copy and precedes the read-back).
int jb_graph_replay(jb_graph* graph, char* err, size_t err_len) {
  return jb::guarded(err, err_len, [&] { graph->replay(); });
}

// ~CUDAGraph releases the graph and its memory pool; it reports its own CUDA errors as
// warnings and does not throw.
void jb_graph_free(jb_graph* graph) { delete graph; }

}  // extern "C"
