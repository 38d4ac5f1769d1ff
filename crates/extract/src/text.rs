//! Decoding bytes of unknown encoding into text: BOM first, then UTF-8, then a statistical guess.

use encoding_rs::{Encoding, UTF_8};

/// Decodes `bytes` to a `String`, honouring a BOM, preferring UTF-8 and otherwise guessing the
/// legacy encoding (Shift-JIS, windows-1252, GBK…) with chardetng.
pub(crate) fn decode(bytes: &[u8]) -> String {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        return encoding.decode_without_bom_handling(&bytes[bom_len..]).0.into_owned();
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_string();
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let encoding = detector.guess(None, chardetng::Utf8Detection::Allow);
    let encoding = if encoding == UTF_8 { encoding_rs::WINDOWS_1252 } else { encoding };
    encoding.decode_without_bom_handling(bytes).0.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_with_bom_and_shift_jis_without_one_both_decode() {
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("héllo".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&utf16), "héllo");
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("名前,年齢,住所\n佐藤太郎,30,東京\n");
        assert!(decode(&sjis).contains("佐藤太郎"));
        assert_eq!(decode("\u{feff}plain".as_bytes()), "plain");
    }
}
