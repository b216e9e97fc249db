// Scalar reference of the replicated-sharing local steps (element-wise).
#include "mpc/kernels.hpp"

namespace cf {
namespace mpc {

void rss_mul_scalar(const uint64_t* x0, const uint64_t* x1, const uint64_t* y0, const uint64_t* y1,
                    const uint64_t* mask, uint64_t* z, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    z[i] = x0[i] * y0[i] + x0[i] * y1[i] + x1[i] * y0[i] + mask[i];
  }
}

void rss_and_scalar(const uint64_t* x0, const uint64_t* x1, const uint64_t* y0, const uint64_t* y1,
                    const uint64_t* mask, uint64_t* z, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    z[i] = (x0[i] & y0[i]) ^ (x0[i] & y1[i]) ^ (x1[i] & y0[i]) ^ mask[i];
  }
}

}  // namespace mpc
}  // namespace cf
