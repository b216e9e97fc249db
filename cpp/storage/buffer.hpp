// Large output buffers for storage reads: advise the kernel to back them with
// transparent huge pages, so filling a fresh 100 MB buffer costs tens of page
// faults instead of tens of thousands.
#pragma once

#include <cstddef>

namespace cf {

/// Smallest buffer (bytes) worth advising: below it the page-fault cost is negligible.
constexpr std::size_t kHugePageAdviceMin = std::size_t{4} << 20;

/// Asks for transparent huge pages on the whole pages inside [p, p + n) (madvise
/// MADV_HUGEPAGE where the platform has it). Purely advisory: the contents and
/// validity of the range are unchanged, failures are ignored. Returns true when
/// the advice was given.
bool advise_huge_pages(void* p, std::size_t n);

}  // namespace cf
