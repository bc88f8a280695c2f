// The completion token every agent coroutine awaits with: errors come back as values (an
// error_code in a tuple) instead of exceptions, so no exception crosses an I/O path.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace spillway {

inline constexpr auto kNoThrow = boost::asio::as_tuple(boost::asio::use_awaitable);

}  // namespace spillway
