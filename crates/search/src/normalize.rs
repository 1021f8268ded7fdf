//! String search is case- and accent-insensitive: both sides are normalised the same way.

use unicode_normalization::UnicodeNormalization;

/// Lower case with combining marks removed (`Ødegård` → `ødegard`; `ø` has no decomposition
/// and stays).
pub fn normalize(s: &str) -> String {
    s.nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn case_and_accents() {
        assert_eq!(normalize("Ødegård"), "ødegard");
        assert_eq!(normalize("ÉLISE"), "elise");
        assert_eq!(normalize("Åsne"), "asne");
    }
}
