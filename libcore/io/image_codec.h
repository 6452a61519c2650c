/* image_codec.h - the per-format halves behind image.h's lathe_image_decode/probe (internal). */
#ifndef LATHE_IO_IMAGE_CODEC_H
#define LATHE_IO_IMAGE_CODEC_H
#include "image.h"

int lathe_jpeg_probe(const uint8_t *data, size_t len, lathe_image_info *info);
/* The decoders take orientation 0 for the file's own EXIF orientation, 1..8 for that one instead. */
int lathe_jpeg_decode(const uint8_t *data, size_t len, const lathe_decode_opts *opts, int orientation,
                      lathe_image *img, lathe_image_info *info);
/* The orientation tag (0x0112) of IFD0 in an EXIF TIFF block (a JPEG's APP1 after "Exif\0\0", a
 * PNG's eXIf chunk): 1..8, or 1 when absent or malformed. */
int lathe_exif_orientation(const uint8_t *tiff, size_t len);
/* Sets info's orientation and its width and height as that orientation shows a w x h stored image. */
void lathe_image_info_set_shown(lathe_image_info *info, int w, int h, int orientation);
/* Where orientation is 1..8, makes it info's, with width and height as it shows them. */
void lathe_image_info_orient_as(lathe_image_info *info, int orientation);
/* ITU-R 601-2 luma with Pillow's integer rounding, in place, for channels = 1 from colour sources. */
void lathe_image_rgb_to_luma(lathe_image *img);
int lathe_png_probe(const uint8_t *data, size_t len, lathe_image_info *info);
int lathe_png_decode(const uint8_t *data, size_t len, const lathe_decode_opts *opts, int orientation,
                     lathe_image *img, lathe_image_info *info);

#endif
