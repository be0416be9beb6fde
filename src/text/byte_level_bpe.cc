#include "text/byte_level_bpe.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include <cstdint>
#include <unordered_map>

namespace vqd::text {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

bool InRange(unsigned char b, unsigned char lo, unsigned char hi) { return b >= lo && b <= hi; }

// Case-insensitive comparison of one code point with an ASCII lowercase letter or symbol, as the
// CLIP pattern's (?i) flag does it (simple case folding, so U+017F LONG S matches 's').
bool FoldEquals(char32_t c, char ascii_lower) {
  if (c == static_cast<char32_t>(ascii_lower)) return true;
  if (c < 0x80) {
    return c >= 'A' && c <= 'Z' && c + 32 == static_cast<char32_t>(ascii_lower);
  }
  return u_foldCase(static_cast<UChar32>(c), U_FOLD_CASE_DEFAULT) ==
         static_cast<UChar32>(ascii_lower);
}

// Whether `text[pos..]` starts with `word` (ASCII), case-insensitively or exactly.
bool StartsWith(std::u32string_view text, size_t pos, std::string_view word, bool ignore_case) {
  if (text.size() - pos < word.size()) return false;
  for (size_t k = 0; k < word.size(); ++k) {
    const char32_t c = text[pos + k];
    if (ignore_case ? !FoldEquals(c, word[k]) : c != static_cast<char32_t>(word[k])) return false;
  }
  return true;
}

enum class CharClass { kSpace, kLetter, kNumber, kOther };

CharClass Classify(char32_t c) {
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CharClass::kLetter;
    if (c >= '0' && c <= '9') return CharClass::kNumber;
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return CharClass::kSpace;
    return CharClass::kOther;
  }
  if (IsUnicodeSpace(c)) return CharClass::kSpace;
  if (IsUnicodeLetter(c)) return CharClass::kLetter;
  if (IsUnicodeNumber(c)) return CharClass::kNumber;
  return CharClass::kOther;
}

// Length of the contraction ('s 't 're 've 'm 'll 'd) at `pos`, or 0.
size_t ContractionLength(std::u32string_view text, size_t pos, bool ignore_case) {
  if (text[pos] != U'\'') return 0;
  static constexpr std::string_view kSuffixes[] = {"s", "t", "re", "ve", "m", "ll", "d"};
  for (std::string_view suffix : kSuffixes) {
    if (StartsWith(text, pos + 1, suffix, ignore_case)) return 1 + suffix.size();
  }
  return 0;
}

size_t RunLength(std::u32string_view text, size_t pos, CharClass cls) {
  size_t end = pos;
  while (end < text.size() && Classify(text[end]) == cls) ++end;
  return end - pos;
}

// The GPT-2 pattern of the ByteLevel pre-tokenizer, applied to one CLIP piece.
void SplitGpt2(std::u32string_view text, std::vector<std::string>* out) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t len = ContractionLength(text, pos, /*ignore_case=*/false);
    if (len == 0) {
      // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`, tried in this order.
      const bool lead_space = text[pos] == U' ' && pos + 1 < text.size();
      for (CharClass cls : {CharClass::kLetter, CharClass::kNumber, CharClass::kOther}) {
        if (lead_space && Classify(text[pos + 1]) == cls) {
          len = 1 + RunLength(text, pos + 1, cls);
          break;
        }
        if (Classify(text[pos]) == cls) {
          len = RunLength(text, pos, cls);
          break;
        }
      }
    }
    if (len == 0) {
      // `\s+(?!\S)|\s+`: a whitespace run that is followed by a non-space gives back its last
      // character unless it is a single character.
      const size_t run = RunLength(text, pos, CharClass::kSpace);
      len = (pos + run == text.size() || run == 1) ? run : run - 1;
      if (len == 0) len = 1;  // unreachable: every character has a class
    }
    out->push_back(EncodeUtf8(text.substr(pos, len)));
    pos += len;
  }
}

void AppendLowercase(char32_t c, std::u32string* out) {
  if (c < 0x80) {
    out->push_back((c >= 'A' && c <= 'Z') ? c + 32 : c);
    return;
  }
  UChar src[2];
  int32_t src_len = 0;
  U16_APPEND_UNSAFE(src, src_len, static_cast<UChar32>(c));
  UChar dst[16];
  UErrorCode err = U_ZERO_ERROR;
  // "" is the root locale: no Turkish/Lithuanian special cases. A single code point has no
  // context, so the final-sigma rule never applies (matching the per-character mapping).
  const int32_t n = u_strToLower(dst, 16, src, src_len, "", &err);
  if (U_FAILURE(err) || n > 16) {
    out->push_back(static_cast<char32_t>(u_tolower(static_cast<UChar32>(c))));
    return;
  }
  int32_t i = 0;
  while (i < n) {
    UChar32 cp;
    U16_NEXT(dst, i, n, cp);
    out->push_back(static_cast<char32_t>(cp));
  }
}

std::u32string Nfc(std::u32string_view text) {
  // Below U+0300 every character is NFC-stable and never composes with what precedes it.
  bool simple = true;
  for (char32_t c : text) {
    if (c >= 0x300) {
      simple = false;
      break;
    }
  }
  if (simple) return std::u32string(text);
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(err);
  if (U_FAILURE(err) || nfc == nullptr) return std::u32string(text);
  icu::UnicodeString in;
  for (char32_t c : text) in.append(static_cast<UChar32>(c));
  icu::UnicodeString normalized = nfc->normalize(in, err);
  if (U_FAILURE(err)) return std::u32string(text);
  std::u32string out;
  out.reserve(static_cast<size_t>(normalized.length()));
  for (int32_t i = 0; i < normalized.length(); i = normalized.moveIndex32(i, 1)) {
    out.push_back(static_cast<char32_t>(normalized.char32At(i)));
  }
  return out;
}

struct ByteTables {
  std::array<std::string, 256> to_unicode;
  std::array<unsigned char, 256> order{};
  std::unordered_map<char32_t, unsigned char> from_unicode;

  ByteTables() {
    std::array<bool, 256> printable{};
    int k = 0;
    auto add_range = [&](int lo, int hi) {
      for (int b = lo; b <= hi; ++b) {
        printable[b] = true;
        order[k++] = static_cast<unsigned char>(b);
      }
    };
    add_range('!', '~');
    add_range(0xA1, 0xAC);
    add_range(0xAE, 0xFF);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      char32_t cp = static_cast<char32_t>(b);
      if (!printable[b]) {
        cp = static_cast<char32_t>(256 + n++);
        order[k++] = static_cast<unsigned char>(b);
      }
      AppendUtf8(cp, &to_unicode[b]);
      from_unicode[cp] = static_cast<unsigned char>(b);
    }
  }
};

const ByteTables& Tables() {
  static const ByteTables* tables = new ByteTables();
  return *tables;
}

}  // namespace

std::u32string DecodeUtf8Lossy(std::string_view bytes) {
  std::u32string out;
  out.reserve(bytes.size());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b0 = static_cast<unsigned char>(bytes[i]);
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    char32_t cp = 0;
    if (InRange(b0, 0xC2, 0xDF)) {
      len = 2;
      cp = b0 & 0x1F;
    } else if (InRange(b0, 0xE0, 0xEF)) {
      len = 3;
      cp = b0 & 0x0F;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;  // no surrogates
    } else if (InRange(b0, 0xF0, 0xF4)) {
      len = 4;
      cp = b0 & 0x07;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;  // <= U+10FFFF
    } else {
      out.push_back(kReplacement);
      ++i;
      continue;
    }
    size_t k = 1;
    for (; k < len; ++k) {
      if (i + k >= n) break;
      const unsigned char b = static_cast<unsigned char>(bytes[i + k]);
      const bool ok = k == 1 ? InRange(b, lo, hi) : InRange(b, 0x80, 0xBF);
      if (!ok) break;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (k == len) {
      out.push_back(cp);
    } else {
      out.push_back(kReplacement);  // the maximal valid prefix becomes one U+FFFD
    }
    i += k;
  }
  return out;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string EncodeUtf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) AppendUtf8(c, &out);
  return out;
}

bool IsUnicodeSpace(char32_t c) {
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE);
}
bool IsUnicodeLetter(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_L_MASK) != 0; }
bool IsUnicodeNumber(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0; }

std::u32string NormalizeClip(std::u32string_view text) {
  const std::u32string composed = Nfc(text);
  std::u32string out;
  out.reserve(composed.size());
  bool in_space = false;
  for (char32_t c : composed) {
    if (Classify(c) == CharClass::kSpace) {
      if (!in_space) out.push_back(U' ');
      in_space = true;
      continue;
    }
    in_space = false;
    AppendLowercase(c, &out);
  }
  return out;
}

std::vector<std::string> PreTokenizeClip(std::u32string_view text, bool gpt2_split) {
  std::vector<std::string> pieces;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t len = 0;
    if (text[pos] == U'<') {
      if (StartsWith(text, pos, "<|startoftext|>", /*ignore_case=*/true)) {
        len = 15;
      } else if (StartsWith(text, pos, "<|endoftext|>", /*ignore_case=*/true)) {
        len = 13;
      }
    }
    if (len == 0) len = ContractionLength(text, pos, /*ignore_case=*/true);
    if (len == 0) {
      switch (Classify(text[pos])) {
        case CharClass::kSpace:
          ++pos;  // not matched by the pattern: removed
          continue;
        case CharClass::kLetter:
          len = RunLength(text, pos, CharClass::kLetter);
          break;
        case CharClass::kNumber:
          len = 1;
          break;
        case CharClass::kOther:
          len = RunLength(text, pos, CharClass::kOther);
          break;
      }
    }
    if (gpt2_split) {
      SplitGpt2(text.substr(pos, len), &pieces);
    } else {
      pieces.push_back(EncodeUtf8(text.substr(pos, len)));
    }
    pos += len;
  }
  return pieces;
}

const std::array<std::string, 256>& ByteToUnicode() { return Tables().to_unicode; }

const std::array<unsigned char, 256>& ByteLevelOrder() { return Tables().order; }

std::string ByteLevelEncode(std::string_view bytes) {
  const auto& table = Tables().to_unicode;
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char b : bytes) out += table[static_cast<unsigned char>(b)];
  return out;
}

std::string ByteLevelDecode(std::string_view mapped) {
  const auto& from = Tables().from_unicode;
  std::string out;
  for (char32_t c : DecodeUtf8Lossy(mapped)) {
    auto it = from.find(c);
    if (it != from.end()) {
      out.push_back(static_cast<char>(it->second));
    } else {
      AppendUtf8(c, &out);
    }
  }
  return out;
}

}  // namespace vqd::text
