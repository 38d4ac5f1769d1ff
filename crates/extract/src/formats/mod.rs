//! One converter per format. Each takes the raw bytes and the limits and returns blocks; the
//! isolation (thread, timeout, panic catching) is applied around them by the crate root.

mod docx;
mod email;
mod epub;
mod feed;
mod html;
mod notebook;
mod odt;
mod ooxml;
mod pdf;
mod pptx;
mod rst;
mod rtf;
mod sheet;
mod textual;

use crate::{ExtractError, Extracted, Format, Limits};

/// Converts `bytes` of `format`; runs on the isolation thread.
pub(crate) fn convert(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> Result<Extracted, ExtractError> {
    match format {
        Format::Pdf => pdf::convert(bytes, limits),
        Format::Docx => docx::convert(bytes, limits),
        Format::Pptx => pptx::convert(bytes, limits),
        Format::Xlsx | Format::Xls => sheet::convert(bytes, format, limits),
        Format::Odt => odt::convert(bytes, limits),
        Format::Html => html::convert(bytes, limits),
        Format::Markdown => textual::markdown(bytes),
        Format::Text => textual::plain(bytes),
        Format::Csv => textual::csv(bytes),
        Format::Json => textual::json(bytes, limits),
        Format::Epub => epub::convert(bytes, limits),
        Format::Rst => rst::convert(bytes),
        Format::Rtf => rtf::convert(bytes, limits),
        Format::Eml => email::eml(bytes),
        Format::Msg => email::msg(bytes, limits),
        Format::Ipynb => notebook::convert(bytes, limits),
        Format::Feed => feed::convert(bytes, limits),
    }
}
