#include "io/png.h"

#include <png.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vqd::io {
namespace {

// libpng reports errors by calling a handler that must not return; ours records the message and
// longjmps back to the setjmp in the Run* functions below. Those functions keep all their state in
// this struct (owned by the caller), so no C++ object with a destructor lives in a frame that a
// longjmp skips.
struct PngContext {
  png_structp png = nullptr;
  png_infop info = nullptr;
  char error[256] = {};
  // Encoding.
  std::string* out = nullptr;
  const uint8_t* pixels = nullptr;
  int width = 0, height = 0, channels = 0, level = 0;
  // Decoding.
  std::string_view in;
  size_t pos = 0;
  Image* image = nullptr;
  std::vector<png_bytep>* rows = nullptr;
};

void OnError(png_structp png, png_const_charp message) {
  auto* ctx = static_cast<PngContext*>(png_get_error_ptr(png));
  std::snprintf(ctx->error, sizeof(ctx->error), "%s", message);
  png_longjmp(png, 1);
}

void OnWarning(png_structp, png_const_charp) {}  // Ancillary-chunk warnings are not worth stderr noise.

void OnWrite(png_structp png, png_bytep data, png_size_t length) {
  auto* ctx = static_cast<PngContext*>(png_get_io_ptr(png));
  try {
    ctx->out->append(reinterpret_cast<const char*>(data), length);
  } catch (const std::exception&) {
    png_error(png, "out of memory while writing");  // Exceptions must not cross libpng's C frames.
  }
}

void OnFlush(png_structp) {}

void OnRead(png_structp png, png_bytep data, png_size_t length) {
  auto* ctx = static_cast<PngContext*>(png_get_io_ptr(png));
  if (length > ctx->in.size() - ctx->pos) png_error(png, "unexpected end of data (truncated PNG)");
  std::memcpy(data, ctx->in.data() + ctx->pos, length);
  ctx->pos += length;
}

bool RunEncode(PngContext* ctx) {
  if (setjmp(png_jmpbuf(ctx->png))) return false;
  png_set_write_fn(ctx->png, ctx, OnWrite, OnFlush);
  png_set_IHDR(ctx->png, ctx->info, ctx->width, ctx->height, 8,
               ctx->channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(ctx->png, ctx->level);
  png_write_info(ctx->png, ctx->info);
  const size_t stride = static_cast<size_t>(ctx->width) * ctx->channels;
  for (int y = 0; y < ctx->height; ++y) {
    png_write_row(ctx->png, const_cast<png_bytep>(ctx->pixels + stride * y));  // libpng does not write through it.
  }
  png_write_end(ctx->png, nullptr);
  return true;
}

// Returns false on a libpng error (message in ctx->error); on a limit violation sets ctx->error
// and returns false too.
bool RunDecode(PngContext* ctx) {
  if (setjmp(png_jmpbuf(ctx->png))) return false;
  png_set_read_fn(ctx->png, ctx, OnRead);
  png_set_user_limits(ctx->png, kMaxPngDimension, kMaxPngDimension);
  png_set_chunk_malloc_max(ctx->png, 8 << 20);  // Bounds ancillary chunks (text, ICC profiles).
  png_set_chunk_cache_max(ctx->png, 1000);
  png_read_info(ctx->png, ctx->info);

  // Normalize every format to 8-bit RGB(A).
  png_set_expand(ctx->png);  // Palette -> RGB, gray < 8 bit -> 8 bit, tRNS -> alpha.
  png_set_strip_16(ctx->png);
  png_set_gray_to_rgb(ctx->png);
  png_set_interlace_handling(ctx->png);
  png_read_update_info(ctx->png, ctx->info);

  const png_uint_32 width = png_get_image_width(ctx->png, ctx->info);
  const png_uint_32 height = png_get_image_height(ctx->png, ctx->info);
  const int channels = png_get_channels(ctx->png, ctx->info);
  if (png_get_bit_depth(ctx->png, ctx->info) != 8 || (channels != 3 && channels != 4)) {
    std::snprintf(ctx->error, sizeof(ctx->error), "unexpected format after conversion (%d channels)", channels);
    return false;
  }
  const uint64_t row_bytes = static_cast<uint64_t>(width) * channels;
  if (row_bytes * height > kMaxPngPixelBytes) {  // Each factor is <= 16384 * 4: no overflow.
    std::snprintf(ctx->error, sizeof(ctx->error), "%ux%u image needs %llu bytes, more than the limit of %llu", width,
                  height, static_cast<unsigned long long>(row_bytes * height),
                  static_cast<unsigned long long>(kMaxPngPixelBytes));
    return false;
  }
  if (png_get_rowbytes(ctx->png, ctx->info) != row_bytes) {
    std::snprintf(ctx->error, sizeof(ctx->error), "unexpected row size");
    return false;
  }
  ctx->image->width = static_cast<int>(width);
  ctx->image->height = static_cast<int>(height);
  ctx->image->channels = channels;
  ctx->image->pixels.resize(row_bytes * height);
  ctx->rows->resize(height);
  for (png_uint_32 y = 0; y < height; ++y) (*ctx->rows)[y] = ctx->image->pixels.data() + row_bytes * y;
  png_read_image(ctx->png, ctx->rows->data());
  png_read_end(ctx->png, nullptr);
  return true;
}

}  // namespace

absl::StatusOr<std::string> EncodePng(const uint8_t* pixels, int width, int height, int channels,
                                      int compression_level) {
  if (pixels == nullptr) return absl::InvalidArgumentError("EncodePng: no pixels");
  if (width <= 0 || height <= 0 || width > kMaxPngDimension || height > kMaxPngDimension) {
    return absl::InvalidArgumentError(
        absl::StrCat("EncodePng: size ", width, "x", height, " is outside 1..", kMaxPngDimension));
  }
  if (channels != 3 && channels != 4) {
    return absl::InvalidArgumentError(absl::StrCat("EncodePng: ", channels, " channels; expected 3 (RGB) or 4 (RGBA)"));
  }
  if (compression_level < 0 || compression_level > 9) {
    return absl::InvalidArgumentError(
        absl::StrCat("EncodePng: compression level ", compression_level, " is outside 0..9"));
  }
  std::string out;
  PngContext ctx;
  ctx.out = &out;
  ctx.pixels = pixels;
  ctx.width = width;
  ctx.height = height;
  ctx.channels = channels;
  ctx.level = compression_level;
  ctx.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, OnError, OnWarning);
  if (ctx.png != nullptr) ctx.info = png_create_info_struct(ctx.png);
  if (ctx.png == nullptr || ctx.info == nullptr) {
    png_destroy_write_struct(&ctx.png, &ctx.info);
    return absl::ResourceExhaustedError("EncodePng: cannot create the libpng writer");
  }
  const bool ok = RunEncode(&ctx);
  png_destroy_write_struct(&ctx.png, &ctx.info);
  if (!ok) return absl::InternalError(absl::StrCat("EncodePng: libpng: ", ctx.error));
  return out;
}

absl::StatusOr<Image> DecodePng(std::string_view bytes) {
  if (bytes.size() < 8 || png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) != 0) {
    return absl::InvalidArgumentError("DecodePng: not a PNG (bad signature)");
  }
  Image image;
  std::vector<png_bytep> rows;
  PngContext ctx;
  ctx.in = bytes;
  ctx.image = &image;
  ctx.rows = &rows;
  ctx.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, OnError, OnWarning);
  if (ctx.png != nullptr) ctx.info = png_create_info_struct(ctx.png);
  if (ctx.png == nullptr || ctx.info == nullptr) {
    png_destroy_read_struct(&ctx.png, &ctx.info, nullptr);
    return absl::ResourceExhaustedError("DecodePng: cannot create the libpng reader");
  }
  bool ok = false;
  try {
    ok = RunDecode(&ctx);
  } catch (const std::bad_alloc&) {
    std::snprintf(ctx.error, sizeof(ctx.error), "out of memory");
  }
  png_destroy_read_struct(&ctx.png, &ctx.info, nullptr);
  if (!ok) return absl::InvalidArgumentError(absl::StrCat("DecodePng: ", ctx.error));
  return image;
}

}  // namespace vqd::io
