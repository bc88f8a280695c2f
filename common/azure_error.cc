// See azure_error.h. Boost.JSON does the escaping so messages may carry any input.
#include "common/azure_error.h"

#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>

namespace spillway {

std::string AzureErrorBody(absl::string_view code, absl::string_view message) {
  std::string body = R"({"error":{"code":)";
  body += boost::json::serialize(boost::json::string_view(code.data(), code.size()));
  body += R"(,"message":)";
  body += boost::json::serialize(boost::json::string_view(message.data(), message.size()));
  body += "}}";
  return body;
}

}  // namespace spillway
