// The text cleaning of OpenAI's CLIP SimpleTokenizer (basic_clean), which the official
// VQ-Diffusion code runs on every prompt: ftfy.fix_text, then html.unescape twice, then strip.
#pragma once

#include <string>
#include <string_view>

namespace vqd::text {

// Python's html.unescape: numeric character references (with or without ";", the HTML5
// replacements for 0x80-0x9F, NUL and out-of-range values, invalid code points removed) and the
// named references of everyday text (amp, lt, gt, quot, apos, nbsp, copy, reg, trade, hellip,
// mdash, ndash, lsquo, rsquo, ldquo, rdquo; the first five also without ";" as HTML5 allows). The
// other 2,000-odd HTML5 names are left as they are.
std::string HtmlUnescape(std::string_view text);

// basic_clean(text): the parts of ftfy.fix_text (ftfy 6) that change ordinary text (its own
// unescaping of HTML when the text has no "<", curly quotes to straight ones, Latin ligatures
// split, fullwidth ASCII to ASCII and the ideographic space to a space, control characters
// removed), then HtmlUnescape twice, then leading and trailing whitespace removed. ftfy's repair
// of mojibake (text decoded with the wrong codec) is not reproduced; its NFC normalisation is left
// to the tokenizer's normaliser, which applies it anyway. Invalid UTF-8 becomes U+FFFD.
std::string OpenAiBasicClean(std::string_view text);

}  // namespace vqd::text
