// Base64 (RFC 4648, standard alphabet, '=' padding) for opaque bytes inside JSON manifests.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dtrain {

std::string base64_encode(std::string_view bytes);
// nullopt when `text` is not canonical padded base64 (bad length, character or padding).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace dtrain
