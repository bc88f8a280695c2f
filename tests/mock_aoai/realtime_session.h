// One Realtime WebSocket session of spillway-mock-aoai, once its handshake was admitted
// (realtime_handler.h): accepts the upgrade, sends session.created, then answers each client
// event as RealtimeConversation says, pacing output tokens like a streamed completion (ttft,
// then ms-per-token). Binary messages are echoed as they came. Reports usage and how the
// session ended to the stats.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/config.h"
#include "tests/mock_aoai/stats.h"

namespace spillway::mock {

// `Stream` is a beast::tcp_stream or a beast::ssl_stream over one.
template <class Stream>
boost::asio::awaitable<void> ServeRealtime(
    Stream& stream, const boost::beast::http::request<boost::beast::http::string_body>& request,
    const MockConfig& config, Stats& stats, absl::string_view deployment, absl::string_view model);

}  // namespace spillway::mock
