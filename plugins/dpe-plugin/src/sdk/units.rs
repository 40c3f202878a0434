//! Byte counts for people, one implementation for both conventions a plugin prints: decimal
//! (`812.3 MB`, as `docker image ls` and `docker system df` print sizes, so dpe's figures read
//! beside the engine's) and binary (`412.3 MiB`, for transfers and caps).

/// `bytes` in powers of 1000: `999 B`, `812.3 MB`, `1.5 GB`.
pub fn decimal(bytes: u64) -> String {
    human(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"])
}

/// `bytes` in powers of 1024: `1023 B`, `1.5 KiB`, `412.3 MiB`.
pub fn binary(bytes: u64) -> String {
    human(bytes, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"])
}

fn human(bytes: u64, base: f64, units: &[&str]) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= base && unit + 1 < units.len() {
        value /= base;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_the_engines_and_like_a_person_writes_them() {
        assert_eq!(decimal(999), "999 B");
        assert_eq!(decimal(812_345_678), "812.3 MB");
        assert_eq!(decimal(1_500_000_000), "1.5 GB");
        assert_eq!(binary(0), "0 B");
        assert_eq!(binary(1023), "1023 B");
        assert_eq!(binary(1536), "1.5 KiB");
        assert_eq!(binary(412 * 1024 * 1024 + 300 * 1024), "412.3 MiB");
        assert_eq!(binary(3 << 30), "3.0 GiB");
        // Past the last unit the number grows instead.
        assert_eq!(decimal(2_000_000_000_000_000_000), "2000.0 PB");
    }
}
