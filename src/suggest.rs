//! Did-you-mean: the closest candidate to a misspelt name.

/// The candidate closest to `input`, if it is close enough to be a plausible typo.
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(input, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_ignores_strangers() {
        assert_eq!(closest("jupytr", ["gpu", "jupyter", "compose"]), Some("jupyter"));
        assert_eq!(closest("imgae", ["image", "env"]), Some("image"));
        assert_eq!(closest("zzz", ["jupyter", "gpu"]), None);
    }
}
