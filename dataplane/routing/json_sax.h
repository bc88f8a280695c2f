// What every Boost.JSON SAX handler of the agent's request and response scanners writes the
// same way: no size limits of their own (their input is bounded by the caller), and document,
// number-part and comment events that carry nothing they read.
#pragma once

#include <boost/json/basic_parser.hpp>
#include <cstddef>

namespace spillway {

struct JsonSaxDefaults {
  static constexpr std::size_t max_array_size = -1;
  static constexpr std::size_t max_object_size = -1;
  static constexpr std::size_t max_string_size = -1;
  static constexpr std::size_t max_key_size = -1;

  bool on_document_begin(boost::json::error_code&) { return true; }
  bool on_document_end(boost::json::error_code&) { return true; }
  bool on_number_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }
};

}  // namespace spillway
