//! Spreadsheets (XLSX, XLS) via calamine: each sheet becomes `## SheetName` and a Markdown table
//! whose first row is the header, like markitdown. Each sheet is one "page".

use std::io::Cursor;

use calamine::{Data, Reader};

use crate::archive::Archive;
use crate::document::DocBuilder;
use crate::{ExtractError, Extracted, Format, Limits};

pub(crate) fn convert(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> Result<Extracted, ExtractError> {
    let name = format.name();
    match format {
        Format::Xlsx => {
            // calamine trusts the archive; inflate everything under our limits first.
            Archive::open(bytes, limits, name)?.verify_all()?;
            let book = calamine::Xlsx::new(Cursor::new(bytes)).map_err(|e| classify(name, e))?;
            sheets(book, format, limits)
        }
        _ => {
            let book = calamine::Xls::new(Cursor::new(bytes)).map_err(|e| classify(name, e))?;
            sheets(book, format, limits)
        }
    }
}

fn classify(name: &'static str, e: impl std::fmt::Display) -> ExtractError {
    let msg = e.to_string();
    if msg.to_ascii_lowercase().contains("password") || msg.to_ascii_lowercase().contains("encrypt")
    {
        ExtractError::Encrypted
    } else {
        ExtractError::corrupt(name, msg)
    }
}

fn sheets<R, RS>(mut book: R, format: Format, limits: &Limits) -> Result<Extracted, ExtractError>
where
    R: Reader<RS>,
    R::Error: std::fmt::Display,
    RS: std::io::Read + std::io::Seek,
{
    let names = book.sheet_names();
    let mut doc = DocBuilder::new();
    doc.page_count = Some(names.len() as u32);
    let mut cells = 0usize;
    for (i, sheet) in names.iter().enumerate() {
        doc.page = Some(i as u32 + 1);
        let range = book.worksheet_range(sheet).map_err(|e| classify(format.name(), e))?;
        let (h, w) = range.get_size();
        cells = cells.saturating_add(h.saturating_mul(w));
        if cells > limits.max_xml_nodes {
            return Err(ExtractError::TooLarge {
                what: "number of spreadsheet cells",
                limit: limits.max_xml_nodes.to_string(),
            });
        }
        doc.heading(2, sheet.clone());
        let rows: Vec<Vec<String>> =
            range.rows().map(|row| row.iter().map(cell).collect()).collect();
        doc.table(&rows);
    }
    Ok(doc.finish(format))
}

fn cell(data: &Data) -> String {
    match data {
        Data::Empty => String::new(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        other => other.to_string(),
    }
}
