// See h2_stream.h. The pacing mirrors Session::WriteFull and Session::WriteStream in session.cc;
// an event is made only when nghttp2 asks for it, that is when the client's window has room.
#include "tests/mock_aoai/h2_stream.h"

#include <algorithm>
#include <cstring>

namespace spillway::mock {
namespace {

constexpr size_t kDripPiece = 64;  // bytes per piece when dripping a non-streamed body, as HTTP/1

void Release(std::string& s) { std::string().swap(s); }

}  // namespace

void H2Stream::ReleaseRequest() {
  for (std::string* field : {&method, &path, &api_key, &authorization, &metadata, &identity_header,
                             &content_type, &body}) {
    Release(*field);
  }
  upload.reset();
}

bool H2Stream::StartBody(size_t head_size) {
  if (reply.kind == Reply::Kind::kStream) {
    // The head goes as HEADERS: counted as handed out, so `out` then holds one event at a time.
    sent_ = out.size();
    return true;
  }
  const size_t body_size = out.size() - head_size;
  sent_ = head_size;
  if (reply.cut_after >= 0) {
    ready_ = head_size + body_size / 2;  // as HTTP/1: half the body, then the cut
  } else if (reply.drip > absl::ZeroDuration()) {
    ready_ = head_size;  // every piece comes after a pause
  } else {
    ready_ = out.size();
  }
  return body_size > 0 || reply.cut_after >= 0;
}

ssize_t H2Stream::Read(uint8_t* buffer, size_t length, uint32_t* flags, absl::Duration* wait) {
  return reply.kind == Reply::Kind::kStream ? ReadEvents(buffer, length, flags, wait)
                                            : ReadFull(buffer, length, flags, wait);
}

void H2Stream::Resume() {
  if (reply.kind == Reply::Kind::kStream) {
    due_ = true;
  } else {
    ready_ = std::min(out.size(), ready_ + kDripPiece);
  }
}

ssize_t H2Stream::ReadFull(uint8_t* buffer, size_t length, uint32_t* flags, absl::Duration* wait) {
  if (sent_ < ready_) {
    const size_t n = std::min(length, ready_ - sent_);
    std::memcpy(buffer, out.data() + sent_, n);
    sent_ += n;
    if (sent_ == out.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return static_cast<ssize_t>(n);
  }
  if (reply.cut_after >= 0) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // RST_STREAM(INTERNAL_ERROR) mid-body
  }
  *wait = reply.drip;
  return NGHTTP2_ERR_DEFERRED;
}

ssize_t H2Stream::ReadEvents(uint8_t* buffer, size_t length, uint32_t* flags,
                             absl::Duration* wait) {
  EventStream& events = *reply.events();
  if (sent_ == out.size()) {
    out.clear();
    sent_ = 0;
    if (events.Done()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    if (reply.cut_after >= 0 && events.events_sent() >= reply.cut_after) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // RST_STREAM(INTERNAL_ERROR)
    }
    absl::Duration pause = absl::ZeroDuration();
    if (reply.drip > absl::ZeroDuration() && events.events_sent() > 0) {
      pause = reply.drip;
    } else if (events.NextStartsLaterToken()) {
      pause = reply.per_token;
    }
    if (pause > absl::ZeroDuration() && !due_) {
      *wait = pause;
      return NGHTTP2_ERR_DEFERRED;
    }
    due_ = false;
    events.AppendNext(out);
  }
  // The rest of the current event; a small window may split it, but never joins two.
  const size_t n = std::min(length, out.size() - sent_);
  std::memcpy(buffer, out.data() + sent_, n);
  sent_ += n;
  if (sent_ == out.size() && events.Done()) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;  // END_STREAM on the frame of the last event ([DONE])
  }
  return static_cast<ssize_t>(n);
}

}  // namespace spillway::mock
