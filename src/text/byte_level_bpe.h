// Text-processing building blocks shared by the CLIP tokenizer and the BPE trainer: lossy UTF-8
// decoding, the CLIP normaliser, the CLIP + GPT-2 byte-level pre-tokenisers and the GPT-2
// `bytes_to_unicode` table. They reproduce what HF tokenizers does for CLIP's tokenizer.json
// (normalizer: NFC, Replace(\s+, " "), Lowercase; pre_tokenizer: Split(CLIP pattern, Removed,
// invert) then ByteLevel(add_prefix_space=false, use_regex=true)).
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace vqd::text {

// The suffix CLIP's BPE appends to the last symbol of every word.
inline constexpr std::string_view kEndOfWord = "</w>";

// Decodes UTF-8 into code points. Every ill-formed sequence is replaced by U+FFFD, one per maximal
// subpart (the Unicode / WHATWG "maximal subpart" practice, as Python's errors="replace" does), so
// arbitrary bytes never make the tokenizer fail. Surrogates and overlong forms are ill-formed.
std::u32string DecodeUtf8Lossy(std::string_view bytes);

// Appends the UTF-8 encoding of `cp` (a valid scalar value) to `out`.
void AppendUtf8(char32_t cp, std::string* out);
std::string EncodeUtf8(std::u32string_view text);

// Unicode classes used by the patterns: \s is the White_Space property (what Oniguruma's \s is in
// Unicode mode), \p{L} and \p{N} are the general categories L* and N*.
bool IsUnicodeSpace(char32_t c);
bool IsUnicodeLetter(char32_t c);
bool IsUnicodeNumber(char32_t c);

// The CLIP normaliser: NFC, every run of \s replaced by one U+0020, then the full lowercase mapping
// of each code point on its own (as Rust's char::to_lowercase does: no context, so a capital sigma
// always becomes U+03C3, and U+0130 becomes "i" + U+0307).
std::u32string NormalizeClip(std::u32string_view text);

// Pre-tokenises normalised text: the CLIP pattern (case-insensitive, matches kept, the rest dropped)
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// and then, inside each match, the GPT-2 pattern of the ByteLevel pre-tokenizer
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// Returns the pieces as UTF-8 bytes (before the byte-to-unicode mapping). Without `gpt2_split`,
// the CLIP pattern's matches are the pieces (OpenAI's own tokenizer).
std::vector<std::string> PreTokenizeClip(std::u32string_view normalized, bool gpt2_split = true);

// GPT-2's bytes_to_unicode: the UTF-8 text of the character that stands for each byte.
const std::array<std::string, 256>& ByteToUnicode();
// The 256 bytes in CLIP vocabulary order (printable ranges first, then the rest by value), so that
// vocabulary id k (k < 256) is ByteToUnicode()[ByteLevelOrder()[k]].
const std::array<unsigned char, 256>& ByteLevelOrder();
// Maps raw bytes to their byte-level characters (UTF-8).
std::string ByteLevelEncode(std::string_view bytes);
// Inverse of ByteLevelEncode for one token's text; characters that are not byte-level characters
// are copied through as their UTF-8 bytes.
std::string ByteLevelDecode(std::string_view mapped);

}  // namespace vqd::text
