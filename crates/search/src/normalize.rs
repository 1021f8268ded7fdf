//! String search is case- and accent-insensitive: both sides are normalised the same way.

use unicode_normalization::UnicodeNormalization;

/// Lower case with combining marks removed, and letters with strokes or ligatures folded to
/// their base letters, which Unicode does not decompose (`Ødegård` → `odegard`, `Tromsø` →
/// `tromso`): a Norwegian user typing `odegard` finds Ødegård.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let letters =
        s.nfkd().filter(|c| !unicode_normalization::char::is_combining_mark(*c)).flat_map(char::to_lowercase);
    for c in letters {
        match c {
            'ø' => out.push('o'),
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            'ß' => out.push_str("ss"),
            'đ' | 'ð' => out.push('d'),
            'ł' => out.push('l'),
            'þ' => out.push_str("th"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn case_and_accents() {
        assert_eq!(normalize("Ødegård"), "odegard");
        assert_eq!(normalize("Tromsø"), "tromso");
        assert_eq!(normalize("Sæther"), "saether");
        assert_eq!(normalize("ÉLISE"), "elise");
        assert_eq!(normalize("Åsne"), "asne");
    }
}
