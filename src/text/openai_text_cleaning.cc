#include "text/openai_text_cleaning.h"

#include <array>
#include <cstdint>
#include <utility>

#include "text/byte_level_bpe.h"

namespace vqd::text {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

// HTML5's replacements for numeric references to C1 controls (windows-1252), NUL and CR.
char32_t CharRefReplacement(uint32_t cp, bool* replaced) {
  static constexpr std::array<char32_t, 32> kWindows1252 = {
      0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
      0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
      0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};
  *replaced = true;
  if (cp == 0x00) return kReplacement;
  if (cp == 0x0D) return U'\r';
  if (cp >= 0x80 && cp <= 0x9F) return kWindows1252[cp - 0x80];
  *replaced = false;
  return 0;
}

// Code points Python's html.unescape drops when a numeric reference names them.
bool IsInvalidCodePoint(uint32_t cp) {
  return (cp >= 0x1 && cp <= 0x8) || cp == 0xB || (cp >= 0xE && cp <= 0x1F) || (cp >= 0x7F && cp <= 0x9F) ||
         (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE;
}

struct NamedRef {
  const char32_t* name;  // without "&" and ";"
  char32_t value;
  bool legacy;  // also recognised without the ";"
};
constexpr NamedRef kNamedRefs[] = {
    {U"amp", U'&', true},      {U"lt", U'<', true},       {U"gt", U'>', true},        {U"quot", U'"', true},
    {U"nbsp", 0xA0, true},     {U"apos", U'\'', false},   {U"copy", 0xA9, true},      {U"reg", 0xAE, true},
    {U"trade", 0x2122, false}, {U"hellip", 0x2026, false}, {U"mdash", 0x2014, false}, {U"ndash", 0x2013, false},
    {U"lsquo", 0x2018, false}, {U"rsquo", 0x2019, false}, {U"ldquo", 0x201C, false},  {U"rdquo", 0x201D, false},
};

bool IsHexDigit(char32_t c) { return (c >= U'0' && c <= U'9') || (c >= U'a' && c <= U'f') || (c >= U'A' && c <= U'F'); }

std::u32string Unescape(const std::u32string& in) {
  std::u32string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    if (in[i] != U'&') {
      out.push_back(in[i++]);
      continue;
    }
    size_t j = i + 1;
    if (j < in.size() && in[j] == U'#') {
      ++j;
      const bool hex = j < in.size() && (in[j] == U'x' || in[j] == U'X');
      if (hex) ++j;
      const size_t digits_start = j;
      uint64_t value = 0;
      while (j < in.size() && (hex ? IsHexDigit(in[j]) : (in[j] >= U'0' && in[j] <= U'9'))) {
        const char32_t c = in[j];
        const uint64_t d = c <= U'9' ? c - U'0' : (c | 0x20) - U'a' + 10;
        value = value > 0x10FFFF ? value : value * (hex ? 16 : 10) + d;  // saturate past the range
        ++j;
      }
      if (j == digits_start) {  // "&#" or "&#x" without digits stays as it is
        out.push_back(in[i++]);
        continue;
      }
      if (j < in.size() && in[j] == U';') ++j;
      bool replaced = false;
      const char32_t replacement = CharRefReplacement(static_cast<uint32_t>(value), &replaced);
      if (replaced) {
        out.push_back(replacement);
      } else if ((value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF) {
        out.push_back(kReplacement);
      } else if (!IsInvalidCodePoint(static_cast<uint32_t>(value))) {
        out.push_back(static_cast<char32_t>(value));
      }
      i = j;
      continue;
    }
    const NamedRef* match = nullptr;
    size_t match_end = 0;
    for (const NamedRef& ref : kNamedRefs) {
      const std::u32string_view name(ref.name);
      if (in.compare(j, name.size(), name) != 0) continue;
      const size_t after = j + name.size();
      if (after < in.size() && in[after] == U';') {
        match = &ref;
        match_end = after + 1;
        break;
      }
      if (ref.legacy && (match == nullptr || name.size() > match_end - j)) {
        match = &ref;
        match_end = after;
      }
    }
    if (match == nullptr) {
      out.push_back(in[i++]);
      continue;
    }
    out.push_back(match->value);
    i = match_end;
  }
  return out;
}

// ftfy's remove_control_chars set.
bool IsRemovedControl(char32_t c) {
  return (c <= 0x08) || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC) || (c >= 0x1D173 && c <= 0x1D17A) ||
         (c >= 0xE0000 && c <= 0xE007F);
}

// ftfy's fix_latin_ligatures table.
const char32_t* Ligature(char32_t c) {
  switch (c) {
    case 0x0132: return U"IJ";
    case 0x0133: return U"ij";
    case 0x0149: return U"\u02BCn";
    case 0x01C4: return U"D\u017D";
    case 0x01C5: return U"D\u017E";
    case 0x01C6: return U"d\u017E";
    case 0x01C7: return U"LJ";
    case 0x01C8: return U"Lj";
    case 0x01C9: return U"lj";
    case 0x01CA: return U"NJ";
    case 0x01CB: return U"Nj";
    case 0x01CC: return U"nj";
    case 0x01F1: return U"DZ";
    case 0x01F2: return U"Dz";
    case 0x01F3: return U"dz";
    case 0xFB00: return U"ff";
    case 0xFB01: return U"fi";
    case 0xFB02: return U"fl";
    case 0xFB03: return U"ffi";
    case 0xFB04: return U"ffl";
    case 0xFB05: return U"\u017Ft";
    case 0xFB06: return U"st";
    default: return nullptr;
  }
}

std::u32string FixText(const std::u32string& in) {
  std::u32string text = in;
  if (text.find(U'<') == std::u32string::npos) text = Unescape(text);  // ftfy's unescape_html="auto"
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (IsRemovedControl(c)) continue;
    if (const char32_t* lig = Ligature(c)) {
      out += lig;
    } else if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) {
      out.push_back(U'\'');
    } else if (c >= 0x201C && c <= 0x201F) {
      out.push_back(U'"');
    } else if (c >= 0xFF01 && c <= 0xFF5E) {
      out.push_back(c - 0xFF01 + 0x21);
    } else if (c == 0x3000) {
      out.push_back(U' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::string HtmlUnescape(std::string_view text) { return EncodeUtf8(Unescape(DecodeUtf8Lossy(text))); }

std::string OpenAiBasicClean(std::string_view text) {
  std::u32string u = Unescape(Unescape(FixText(DecodeUtf8Lossy(text))));
  size_t begin = 0, end = u.size();
  while (begin < end && IsUnicodeSpace(u[begin])) ++begin;
  while (end > begin && IsUnicodeSpace(u[end - 1])) --end;
  return EncodeUtf8(std::u32string_view(u).substr(begin, end - begin));
}

}  // namespace vqd::text
