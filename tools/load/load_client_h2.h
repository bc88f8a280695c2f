// The HTTP/2 half of LoadClient (--http2): a request goes as one stream of an H2Session the
// agent's UpstreamPool shares among requests, its answer read from DATA frames as they arrive.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "dataplane/upstream/h2_session.h"
#include "tools/load/load_answer.h"

namespace spillway::load {

// A request as HTTP/2 sends it: views into the HTTP/1.1 request it was made from and `names`.
struct H2Request {
  std::vector<H2Header> headers;  // :method, :scheme, :authority, :path, then the fields
  std::string names;              // the fields' names, lowercased as HTTP/2 requires
  absl::string_view body;
};

// Fills `out` from `request`, a whole HTTP/1.1 request as BuildHttpRequest writes it (which must
// outlive `out`): Host becomes :authority, connection-specific fields are left out.
void ToH2Request(absl::string_view request, bool tls, H2Request& out);

// The error kind of a stream that failed with `error` (H2Stream::error()), `answered` when its
// head had arrived: h2_reset (RST_STREAM), h2_refused (refused unprocessed: REFUSED_STREAM, or
// above a GOAWAY's last stream id), connect, bad_http (an HTTP/2 protocol error), else cut or
// closed_unanswered, as over HTTP/1.1.
std::string H2ErrorKind(absl::string_view error, bool answered);

// What one try of a request over HTTP/2 came to.
struct H2Exchange {
  AnswerHead head;
  std::string error_kind;  // empty: the answer arrived whole
  // The backend refused the stream before processing it (or the connection went before the
  // request left whole): it may be sent again, once. error_kind is then "h2_refused".
  bool refused = false;
};

// Sends `request` on `session` and reads the answer into `answer` until it ends, fails, or
// `deadline` passes (then the stream is reset: RST_STREAM CANCEL). Each body byte taken is
// acknowledged (H2Stream::Consumed), so flow control keeps the stream going.
boost::asio::awaitable<H2Exchange> ExchangeH2(H2Session& session,
                                              const boost::asio::any_io_executor& executor,
                                              const H2Request& request, Clock::time_point deadline,
                                              LoadAnswer& answer);

}  // namespace spillway::load
