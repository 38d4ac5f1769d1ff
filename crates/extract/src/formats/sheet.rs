//! Spreadsheets (XLSX, XLS) via calamine: each sheet becomes `## SheetName` and a Markdown table
//! whose first row is the header, like markitdown. Each sheet is one "page".
//!
//! calamine sizes its allocations from numbers written in the file: an XLS sheet's DIMENSIONS
//! record is `reserve`d as cells, a sheet's cells become a dense grid spanning the outermost two,
//! and XLSX's shared-string table reserves its declared `uniqueCount`. A few kilobytes can declare
//! 2^40 cells, and a failed allocation aborts the process rather than panicking. So every number
//! calamine would allocate from is checked here first, against [`Limits::max_sheet_cells`].

use std::io::{Cursor, Read};

use calamine::{Data, DataRef, Reader, XlsxError};

use crate::archive::Archive;
use crate::document::DocBuilder;
use crate::{ExtractError, Extracted, Format, Limits};

pub(crate) fn convert(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> Result<Extracted, ExtractError> {
    match format {
        Format::Xlsx => xlsx(bytes, limits),
        _ => xls(bytes, limits),
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

fn too_many_cells(limits: &Limits) -> ExtractError {
    ExtractError::TooLarge {
        what: "number of spreadsheet cells",
        limit: limits.max_sheet_cells.to_string(),
    }
}

// ---- XLSX ----

fn xlsx(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    let name = Format::Xlsx.name();
    // calamine trusts the archive; inflate everything under our limits first.
    Archive::open(bytes, limits, name)?.verify_all(|entry, data| {
        if entry.replace('\\', "/").to_ascii_lowercase().ends_with("sharedstrings.xml") {
            check_shared_strings(data, limits)?;
        }
        Ok(())
    })?;
    let mut book = calamine::Xlsx::new(Cursor::new(bytes)).map_err(|e| classify(name, e))?;
    let names = book.sheet_names();
    let mut doc = DocBuilder::new();
    doc.page_count = Some(names.len() as u32);
    let mut budget = limits.max_sheet_cells;
    for (i, sheet) in names.iter().enumerate() {
        doc.page = Some(i as u32 + 1);
        // Cells are read one by one (the sparse reader), never as calamine's dense range.
        let mut cells = Vec::new();
        match book.worksheet_cells_reader(sheet) {
            Ok(mut reader) => {
                while let Some(cell) = reader.next_cell().map_err(|e| classify(name, e))? {
                    if matches!(cell.get_value(), DataRef::Empty) {
                        continue;
                    }
                    if cells.len() as u64 >= budget {
                        return Err(too_many_cells(limits));
                    }
                    cells.push((cell.get_position(), text(&Data::from(cell.get_value().clone()))));
                }
            }
            // Chart sheets and dialogs have no cells; they keep their heading.
            Err(XlsxError::NotAWorksheet(_)) => {}
            Err(e) => return Err(classify(name, e)),
        }
        let rows = grid(cells, &mut budget, limits)?;
        doc.heading(2, sheet.clone());
        doc.table(&rows);
    }
    Ok(doc.finish(Format::Xlsx))
}

/// The shared-string table's `uniqueCount` is reserved up front; a part cannot hold more strings
/// than it has bytes. The raw attribute is what calamine reads, so every occurrence is checked.
fn check_shared_strings(xml: &[u8], limits: &Limits) -> Result<(), ExtractError> {
    const KEY: &[u8] = b"uniqueCount";
    let bound = (xml.len() as u64).min(limits.max_xml_nodes as u64);
    let mut at = 0;
    while let Some(found) = find(&xml[at..], KEY) {
        at += found + KEY.len();
        // Not followed by `=`: text or another name containing the word, not the attribute.
        let Some(rest) = xml[at..].trim_ascii_start().strip_prefix(b"=") else { continue };
        let Some((&quote, value)) = rest.trim_ascii_start().split_first() else { break };
        if quote != b'"' && quote != b'\'' {
            continue;
        }
        let value = value.strip_prefix(b"+").unwrap_or(value);
        let digits = value.iter().take_while(|b| b.is_ascii_digit());
        let declared =
            digits.fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0')));
        if declared > bound {
            return Err(ExtractError::corrupt(
                Format::Xlsx.name(),
                format!(
                    "the shared-string table declares {declared} strings in {} bytes",
                    xml.len()
                ),
            ));
        }
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Lays sparse cells out as rows spanning their bounding box (as calamine's ranges do), after
/// checking that the box fits what is left of the workbook's cell budget.
fn grid(
    cells: Vec<((u32, u32), String)>,
    budget: &mut u64,
    limits: &Limits,
) -> Result<Vec<Vec<String>>, ExtractError> {
    let Some(((r0, r1), (c0, c1))) = bounds(cells.iter().map(|(pos, _)| *pos)) else {
        return Ok(Vec::new());
    };
    let (height, width) = (u64::from(r1 - r0) + 1, u64::from(c1 - c0) + 1);
    let area = height.saturating_mul(width);
    if area > *budget {
        return Err(too_many_cells(limits));
    }
    *budget -= area;
    let mut rows = vec![vec![String::new(); width as usize]; height as usize];
    for ((r, c), value) in cells {
        rows[(r - r0) as usize][(c - c0) as usize] = value;
    }
    Ok(rows)
}

/// `((first row, last row), (first column, last column))` of some positions.
fn bounds(positions: impl Iterator<Item = (u32, u32)>) -> Option<((u32, u32), (u32, u32))> {
    positions.fold(None, |acc, (r, c)| {
        Some(match acc {
            None => ((r, r), (c, c)),
            Some(((r0, r1), (c0, c1))) => ((r0.min(r), r1.max(r)), (c0.min(c), c1.max(c))),
        })
    })
}

// ---- XLS ----

fn xls(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    let name = Format::Xls.name();
    // calamine parses every sheet (and allocates its grid) inside `Xls::new`.
    check_xls(bytes, limits)?;
    let mut book = calamine::Xls::new(Cursor::new(bytes)).map_err(|e| classify(name, e))?;
    let names = book.sheet_names();
    let mut doc = DocBuilder::new();
    doc.page_count = Some(names.len() as u32);
    for (i, sheet) in names.iter().enumerate() {
        doc.page = Some(i as u32 + 1);
        let range = book.worksheet_range(sheet).map_err(|e| classify(name, e))?;
        doc.heading(2, sheet.clone());
        let rows: Vec<Vec<String>> =
            range.rows().map(|row| row.iter().map(text).collect()).collect();
        doc.table(&rows);
    }
    Ok(doc.finish(Format::Xls))
}

/// Walks the BIFF records calamine will walk, in every stream it may take for the workbook, and
/// refuses a workbook whose declared or spanned cells exceed the limit.
fn check_xls(bytes: &[u8], limits: &Limits) -> Result<(), ExtractError> {
    let name = Format::Xls.name();
    let mut file =
        cfb::CompoundFile::open(Cursor::new(bytes)).map_err(|e| ExtractError::corrupt(name, e))?;
    let streams: Vec<_> = file
        .walk()
        .filter(|e| {
            e.is_stream()
                && (e.name().eq_ignore_ascii_case("workbook")
                    || e.name().eq_ignore_ascii_case("book"))
        })
        .map(|e| e.path().to_path_buf())
        .collect();
    for path in streams {
        let mut stream = Vec::new();
        file.open_stream(&path)
            .and_then(|s| s.take(limits.max_input_bytes).read_to_end(&mut stream))
            .map_err(|e| ExtractError::corrupt(name, e))?;
        let (declared, spanned) = workbook_cells(&stream);
        if declared > limits.max_sheet_cells || spanned > limits.max_sheet_cells {
            return Err(too_many_cells(limits));
        }
    }
    Ok(())
}

/// BIFF records (type, data) as calamine's iterator yields them, stopping where it would fail.
fn records(mut stream: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if stream.len() < 4 {
            return None;
        }
        let len = usize::from(u16_at(stream, 2));
        let record = stream.get(4..4 + len)?;
        let typ = u16_at(stream, 0);
        stream = &stream[4 + len..];
        Some((typ, record))
    })
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// For one workbook stream: the cells its sheets' DIMENSIONS records make calamine reserve, and
/// the cells of the dense grids it builds (values and formulas), summed over the sheets.
fn workbook_cells(stream: &[u8]) -> (u64, u64) {
    // The globals substream names each sheet with the stream offset of its BOF.
    let mut sheets = Vec::new();
    for (typ, data) in records(stream) {
        match typ {
            0x0085 if data.len() >= 4 => sheets.push(u32_at(data, 0) as usize),
            0x000A => break,
            _ => {}
        }
    }
    let (mut declared, mut spanned) = (0u64, 0u64);
    for pos in sheets {
        let Some(sheet) = stream.get(pos..) else { continue };
        let (mut cells, mut formulas) = (Vec::new(), Vec::new());
        let (mut seen_bof, mut depth) = (false, 0usize);
        for (typ, data) in records(sheet) {
            // Embedded substreams (charts) are skipped, as calamine skips them.
            if depth > 0 {
                match typ {
                    0x0809 => depth += 1,
                    0x000A => depth -= 1,
                    _ => {}
                }
                continue;
            }
            match typ {
                0x0809 if seen_bof => depth += 1,
                0x0809 => seen_bof = true,
                0x0200 => declared = declared.saturating_add(dimensions(data)),
                // Number, Label, RString, BoolErr, RK, LabelSst: row and column first.
                0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD if data.len() >= 4 => {
                    cells.push((u32::from(u16_at(data, 0)), u32::from(u16_at(data, 2))));
                }
                // Formula: a cell in both grids.
                0x0006 if data.len() >= 4 => {
                    let pos = (u32::from(u16_at(data, 0)), u32::from(u16_at(data, 2)));
                    cells.push(pos);
                    formulas.push(pos);
                }
                // MulRk: a row, its first column, … , its last column.
                0x00BD if data.len() >= 6 => {
                    let row = u32::from(u16_at(data, 0));
                    let (first, last) = (u16_at(data, 2), u16_at(data, data.len() - 2));
                    if first <= last {
                        cells.push((row, u32::from(first)));
                        cells.push((row, u32::from(last)));
                    }
                }
                0x000A => break,
                _ => {}
            }
        }
        // One grid of values and one of formulas.
        for grid in [cells, formulas] {
            if let Some(((r0, r1), (c0, c1))) = bounds(grid.into_iter()) {
                let area = (u64::from(r1 - r0) + 1) * (u64::from(c1 - c0) + 1);
                spanned = spanned.saturating_add(area);
            }
        }
    }
    (declared, spanned)
}

/// The cells a DIMENSIONS record makes calamine reserve, with its arithmetic (u32, wrapping as in
/// a release build).
fn dimensions(data: &[u8]) -> u64 {
    let (first_row, last_row, mut first_col, last_col) = match data.len() {
        10 => (
            u32::from(u16_at(data, 0)),
            u32::from(u16_at(data, 2)),
            u32::from(u16_at(data, 4)),
            u32::from(u16_at(data, 6)),
        ),
        14 | 16 => (
            u32_at(data, 0),
            u32_at(data, 4),
            u32::from(u16_at(data, 8)),
            u32::from(u16_at(data, 10)),
        ),
        _ => return 0,
    };
    if first_col > 0xFF || last_col < first_col {
        first_col = 0;
    }
    if last_row == 0 || last_col == 0 {
        return 1;
    }
    let rows = (last_row - 1).wrapping_sub(first_row).wrapping_add(1);
    let cols = (last_col - 1).wrapping_sub(first_col).wrapping_add(1);
    u64::from(rows) * u64::from(cols)
}

fn text(data: &Data) -> String {
    match data {
        Data::Empty => String::new(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn record(typ: u16, data: &[u8]) -> Vec<u8> {
        let mut out = typ.to_le_bytes().to_vec();
        out.extend_from_slice(&(data.len() as u16).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    fn bof(dt: u16) -> Vec<u8> {
        let mut data = 0x0600u16.to_le_bytes().to_vec();
        data.extend_from_slice(&dt.to_le_bytes());
        data.extend_from_slice(&[0; 12]);
        record(0x0809, &data)
    }

    fn number(row: u16, col: u16, value: f64) -> Vec<u8> {
        let mut data = row.to_le_bytes().to_vec();
        data.extend_from_slice(&col.to_le_bytes());
        data.extend_from_slice(&0u16.to_le_bytes());
        data.extend_from_slice(&value.to_le_bytes());
        record(0x0203, &data)
    }

    fn dimensions_record(rows: u32, cols: u16) -> Vec<u8> {
        let mut data = 0u32.to_le_bytes().to_vec();
        data.extend_from_slice(&rows.to_le_bytes());
        data.extend_from_slice(&0u16.to_le_bytes());
        data.extend_from_slice(&cols.to_le_bytes());
        data.extend_from_slice(&0u16.to_le_bytes());
        record(0x0200, &data)
    }

    /// A BIFF8 workbook with one sheet, "Data", made of `sheet` records, in a compound file.
    fn xls_with(sheet: &[Vec<u8>]) -> Vec<u8> {
        let bound = |pos: u32| {
            let mut data = pos.to_le_bytes().to_vec();
            data.extend_from_slice(&[0, 0, 4, 0]);
            data.extend_from_slice(b"Data");
            record(0x0085, &data)
        };
        let globals_len = (bof(0x0005).len() + bound(0).len() + record(0x000A, &[]).len()) as u32;
        let mut stream = [bof(0x0005), bound(globals_len), record(0x000A, &[])].concat();
        stream.extend(bof(0x0010));
        stream.extend(sheet.concat());
        stream.extend(record(0x000A, &[]));
        let mut file = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
        file.create_stream("/Workbook").unwrap().write_all(&stream).unwrap();
        file.flush().unwrap();
        file.into_inner().into_inner()
    }

    #[test]
    fn a_small_built_workbook_reads_back() {
        let bytes = xls_with(&[dimensions_record(2, 2), number(0, 0, 7.0), number(1, 1, 42.0)]);
        let doc = convert(&bytes, Format::Xls, &Limits::default()).unwrap();
        assert!(doc.markdown.contains("## Data"), "{}", doc.markdown);
        assert!(doc.markdown.contains("42"), "{}", doc.markdown);
    }

    #[test]
    fn declared_dimensions_beyond_the_limit_are_refused_before_calamine_reserves_them() {
        // 2^32 - 1 rows of 256 columns: calamine would reserve ~2^40 cells and abort.
        let bytes = xls_with(&[dimensions_record(u32::MAX, 256), number(0, 0, 1.0)]);
        let err = convert(&bytes, Format::Xls, &Limits::default()).unwrap_err();
        assert_eq!(err.code(), "too_large", "{err}");
    }

    #[test]
    fn two_far_apart_cells_are_refused_before_calamine_makes_them_dense() {
        // 65,536 rows × 256 columns spanned by two cells.
        let bytes = xls_with(&[number(0, 0, 1.0), number(65_535, 255, 2.0)]);
        let err = convert(&bytes, Format::Xls, &Limits::default()).unwrap_err();
        assert_eq!(err.code(), "too_large", "{err}");
        // 4,000 × 256 (a million cells, half the limit) is read.
        let bytes = xls_with(&[number(0, 0, 1.0), number(3_999, 255, 2.0)]);
        let doc = convert(&bytes, Format::Xls, &Limits::default()).unwrap();
        assert_eq!(
            doc.markdown.lines().filter(|l| l.starts_with('|')).count(),
            4_001,
            "header rule"
        );
    }

    /// A one-sheet XLSX whose sheet XML holds `cells` and whose shared strings are `sst`.
    fn xlsx_with(cells: &str, sst: Option<&str>) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        let mut part = |name: &str, body: &str| {
            zip.start_file(name, opts).unwrap();
            zip.write_all(body.as_bytes()).unwrap();
        };
        part(
            "[Content_Types].xml",
            r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
        );
        part(
            "_rels/.rels",
            r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        );
        part(
            "xl/workbook.xml",
            r#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        );
        part(
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
        );
        part(
            "xl/worksheets/sheet1.xml",
            &format!(
                r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{cells}</sheetData></worksheet>"#
            ),
        );
        if let Some(sst) = sst {
            part("xl/sharedStrings.xml", sst);
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn xlsx_cells_far_apart_are_refused_not_made_dense() {
        let near = r#"<row r="1"><c r="A1"><v>1</v></c><c r="B2"><v>42</v></c></row>"#;
        let doc = convert(&xlsx_with(near, None), Format::Xlsx, &Limits::default()).unwrap();
        assert!(doc.markdown.contains("42"), "{}", doc.markdown);
        // A1 and XFD1048576: calamine's dense range would be 2^34 cells.
        let far = r#"<row r="1"><c r="A1"><v>1</v></c></row><row r="1048576"><c r="XFD1048576"><v>2</v></c></row>"#;
        let err = convert(&xlsx_with(far, None), Format::Xlsx, &Limits::default()).unwrap_err();
        assert_eq!(err.code(), "too_large", "{err}");
    }

    #[test]
    fn a_shared_string_count_the_part_cannot_hold_is_refused() {
        let cells = r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row>"#;
        let honest = r#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>hello</t></si></sst>"#;
        let doc =
            convert(&xlsx_with(cells, Some(honest)), Format::Xlsx, &Limits::default()).unwrap();
        assert!(doc.markdown.contains("hello"), "{}", doc.markdown);
        let lying = honest.replace(r#"uniqueCount="1""#, r#"uniqueCount = '99999999999999'"#);
        let err =
            convert(&xlsx_with(cells, Some(&lying)), Format::Xlsx, &Limits::default()).unwrap_err();
        assert_eq!(err.code(), "corrupt_file", "{err}");
    }
}
