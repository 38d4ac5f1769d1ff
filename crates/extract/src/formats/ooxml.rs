//! Pieces shared by the Office Open XML readers: relationship files and part paths.

use std::collections::HashMap;

use crate::archive::{Archive, resolve_path};
use crate::xml;
use crate::{ExtractError, Limits};

/// The relationships of `part` (`word/document.xml` → `word/_rels/document.xml.rels`), as
/// id → (type suffix, resolved archive path).
pub(crate) fn relationships(
    zip: &mut Archive<'_>,
    part: &str,
    limits: &Limits,
    format: &'static str,
) -> Result<HashMap<String, (String, String)>, ExtractError> {
    let (dir, file) = part.rsplit_once('/').unwrap_or(("", part));
    let rels_path = if dir.is_empty() {
        format!("_rels/{file}.rels")
    } else {
        format!("{dir}/_rels/{file}.rels")
    };
    let Some(text) = zip.read_string(&rels_path)? else {
        return Ok(HashMap::new());
    };
    let root = xml::parse(&text, limits, format)?;
    let mut out = HashMap::new();
    let mut rels = Vec::new();
    root.find_all("Relationship", &mut rels);
    for rel in rels {
        let (Some(id), Some(target)) = (rel.attr("Id"), rel.attr("Target")) else { continue };
        let kind = rel.attr("Type").unwrap_or("").rsplit('/').next().unwrap_or("").to_string();
        let path = if rel.attr("TargetMode") == Some("External") {
            target.to_string()
        } else {
            resolve_path(dir, target)
        };
        out.insert(id.to_string(), (kind, path));
    }
    Ok(out)
}

/// The main part of a package (the `officeDocument` relationship), or `fallback`.
pub(crate) fn main_part(
    zip: &mut Archive<'_>,
    limits: &Limits,
    format: &'static str,
    fallback: &str,
) -> Result<String, ExtractError> {
    let rels = relationships(zip, "", limits, format)?;
    Ok(rels
        .into_values()
        .find(|(kind, _)| kind == "officeDocument")
        .map(|(_, path)| path)
        .unwrap_or_else(|| fallback.to_string()))
}

/// A MIME type for an image file name, for markitdown-style `data:<mime>;base64...` references.
pub(crate) fn image_mime(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("").to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        "tif" | "tiff" => "image/tiff",
        "emf" => "image/x-emf",
        "wmf" => "image/x-wmf",
        _ => "application/octet-stream",
    }
}
