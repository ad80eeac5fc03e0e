//! Turning an uploaded file into the images the server keeps: recognised by its bytes, its
//! declared size checked before a pixel is decoded, decoded by the `image` crate under allocation
//! limits, turned upright, resized, and encoded anew, so that nothing of the file but its pixels
//! survives (no EXIF, no GPS position, no comments, no colour profile).
//!
//! The encoding rule: an image with any pixel that is not fully opaque is stored as PNG (lossless,
//! keeps the transparency); every other image as JPEG at quality [`JPEG_QUALITY`]. The thumbnail
//! takes the image's type.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageError, ImageFormat, ImageReader};

use crate::error::ApiError;

/// The most pixels an upload may declare: past it, 413 before decoding.
pub const MAX_PIXELS: u64 = crate::limits::MAX_IMAGE_MEGAPIXELS * 1_000_000;
/// The longer side of a stored image, at most.
pub const MAX_SIDE: u32 = 1_600;
/// The longer side of a thumbnail (and of an avatar, which is square), at most.
pub const THUMB_SIDE: u32 = 400;
/// The quality of the JPEG encoder (of 100).
pub const JPEG_QUALITY: u8 = 85;
/// The second guard behind the pixel check: the decoders allocate at most this much (40
/// megapixels of 16-bit RGBA), and no side may be longer than this.
const MAX_ALLOC: u64 = MAX_PIXELS * 8;
const MAX_DECODED_SIDE: u32 = 65_535;

/// What an image is made into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// As uploaded, at most [`MAX_SIDE`] on its longer side.
    Post,
    /// Cropped to its centre square first.
    Avatar,
}

/// One encoded image.
#[derive(Debug)]
pub struct Encoded {
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

/// What the server keeps of an upload.
#[derive(Debug)]
pub struct Processed {
    /// `image/jpeg` or `image/png`, for both images.
    pub content_type: &'static str,
    pub image: Encoded,
    pub thumbnail: Encoded,
    /// The thumbnail's BlurHash (4 by 3 components).
    pub blurhash: String,
}

/// The formats accepted, by their bytes (GIF: its first frame).
fn accepted(format: ImageFormat) -> bool {
    matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Gif
    )
}

/// 413 for a decoder that would go past the limits, 415 for anything else it refuses (a
/// truncated or corrupt file, a feature the decoder does not have).
fn refused(err: ImageError) -> ApiError {
    match err {
        ImageError::Limits(_) => ApiError::ImageTooLarge,
        _ => ApiError::NotAnImage,
    }
}

/// The declared size of a GIF's first frame, read from its descriptor (no pixel is decoded).
fn gif_first_frame(bytes: &[u8]) -> Result<(u16, u16), ApiError> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut decoder = options
        .read_info(Cursor::new(bytes))
        .map_err(|_| ApiError::NotAnImage)?;
    match decoder.next_frame_info() {
        Ok(Some(frame)) => Ok((frame.width, frame.height)),
        _ => Err(ApiError::NotAnImage),
    }
}

/// Decodes, checks, orients, resizes and encodes `bytes` as [`Processed`]. CPU-bound and
/// blocking: call it off the async executor ([`super::process`]).
pub fn process(bytes: &[u8], shape: Shape) -> Result<Processed, ApiError> {
    let format = image::guess_format(bytes).map_err(|_| ApiError::NotAnImage)?;
    if !accepted(format) {
        return Err(ApiError::NotAnImage);
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DECODED_SIDE);
    limits.max_image_height = Some(MAX_DECODED_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    // Reads the header only: the declared size is checked before any pixel is decoded.
    let mut decoder = reader.into_decoder().map_err(refused)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(ApiError::NotAnImage);
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ApiError::ImageTooLarge);
    }
    // A GIF's header declares its screen; the first frame, which is what is decoded, declares
    // its own size, and may be far larger than a screen of one pixel.
    if format == ImageFormat::Gif {
        let (frame_width, frame_height) = gif_first_frame(bytes)?;
        if u64::from(frame_width) * u64::from(frame_height) > MAX_PIXELS {
            return Err(ApiError::ImageTooLarge);
        }
    }
    // An orientation that cannot be read is no reason to refuse the pixels.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut decoded = DynamicImage::from_decoder(decoder).map_err(refused)?;
    decoded.apply_orientation(orientation);
    if shape == Shape::Avatar {
        let side = decoded.width().min(decoded.height());
        decoded = decoded.crop_imm(
            (decoded.width() - side) / 2,
            (decoded.height() - side) / 2,
            side,
            side,
        );
    }
    let image = fit(decoded, MAX_SIDE);
    let thumbnail = fit(image.clone(), THUMB_SIDE);
    let opaque = is_opaque(&image);
    let rgba = thumbnail.to_rgba8();
    let blurhash = blurhash::encode(4, 3, rgba.width(), rgba.height(), rgba.as_raw())
        .map_err(|e| ApiError::internal(std::io::Error::other(e.to_string())))?;
    Ok(Processed {
        content_type: if opaque { "image/jpeg" } else { "image/png" },
        image: encode(&image, opaque)?,
        thumbnail: encode(&thumbnail, opaque)?,
        blurhash,
    })
}

/// `image`, made to fit `side` by `side` (its aspect kept); as it is when it fits already.
fn fit(image: DynamicImage, side: u32) -> DynamicImage {
    let longer = image.width().max(image.height());
    if longer <= side {
        image
    } else if longer >= side * 2 {
        // Many pixels to one: a box filter in integers, with no intermediate image of floats
        // (a 40-megapixel image would need hundreds of megabytes of them).
        image.thumbnail(side, side)
    } else {
        image.resize(side, side, FilterType::CatmullRom)
    }
}

/// Whether every pixel of `image` is fully opaque.
fn is_opaque(image: &DynamicImage) -> bool {
    if !image.color().has_alpha() {
        return true;
    }
    image.to_rgba8().pixels().all(|p| p.0[3] == u8::MAX)
}

/// `image` encoded anew: JPEG when it is opaque, else PNG. Neither encoder is given any metadata.
fn encode(image: &DynamicImage, opaque: bool) -> Result<Encoded, ApiError> {
    let mut bytes = Vec::new();
    let written = if opaque {
        let rgb = image.to_rgb8();
        JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY).write_image(
            rgb.as_raw(),
            rgb.width(),
            rgb.height(),
            image::ExtendedColorType::Rgb8,
        )
    } else {
        let rgba = image.to_rgba8();
        PngEncoder::new(&mut bytes).write_image(
            rgba.as_raw(),
            rgba.width(),
            rgba.height(),
            image::ExtendedColorType::Rgba8,
        )
    };
    written.map_err(ApiError::internal)?;
    Ok(Encoded {
        width: image.width(),
        height: image.height(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, alpha: u8) -> Vec<u8> {
        let image = image::RgbaImage::from_pixel(width, height, image::Rgba([200, 10, 10, alpha]));
        let mut bytes = Vec::new();
        DynamicImage::ImageRgba8(image)
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        bytes
    }

    #[test]
    fn a_large_opaque_image_is_made_a_jpeg_at_most_1600_pixels_with_a_400_pixel_thumbnail() {
        let done = process(&png(3_200, 1_000, 255), Shape::Post).unwrap();
        assert_eq!(done.content_type, "image/jpeg");
        assert_eq!((done.image.width, done.image.height), (1_600, 500));
        assert_eq!((done.thumbnail.width, done.thumbnail.height), (400, 125));
        assert_eq!(
            image::guess_format(&done.image.bytes).unwrap(),
            ImageFormat::Jpeg
        );
        assert!(!done.blurhash.is_empty());
    }

    #[test]
    fn a_transparent_image_stays_a_png_and_an_avatar_is_square() {
        let done = process(&png(300, 120, 100), Shape::Avatar).unwrap();
        assert_eq!(done.content_type, "image/png");
        assert_eq!((done.image.width, done.image.height), (120, 120));
        assert_eq!(
            image::guess_format(&done.thumbnail.bytes).unwrap(),
            ImageFormat::Png
        );
    }

    #[test]
    fn text_and_other_formats_are_not_images() {
        for bytes in [
            &b"hello, world"[..],
            b"",
            b"BM\0\0\0\0",
            b"\x89PNG\r\n\x1a\n",
        ] {
            assert!(matches!(
                process(bytes, Shape::Post),
                Err(ApiError::NotAnImage)
            ));
        }
    }
}
