//! Editing an `LD_PRELOAD` value (entries separated by spaces or colons).

/// `value` without the entries that name `me` (by equal text, or by `same` on the two paths).
/// `None` when nothing was removed. Kept entries are joined with `:`.
pub fn without(value: &[u8], me: &[u8], same: impl Fn(&[u8], &[u8]) -> bool) -> Option<Vec<u8>> {
    let mut removed = false;
    let mut kept: Vec<&[u8]> = Vec::new();
    for entry in value
        .split(|&b| b == b':' || b == b' ')
        .filter(|e| !e.is_empty())
    {
        if entry == me || same(entry, me) {
            removed = true;
        } else {
            kept.push(entry);
        }
    }
    removed.then(|| kept.join(&b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: &[u8], _: &[u8]) -> bool {
        false
    }

    #[test]
    fn removes_only_this_library() {
        let me = b"/opt/crac/lib/crac/libcudart.so.12";
        assert_eq!(without(me, me, never), Some(Vec::new()));
        assert_eq!(
            without(b"/a.so:/opt/crac/lib/crac/libcudart.so.12 /b.so", me, never),
            Some(b"/a.so:/b.so".to_vec())
        );
        assert_eq!(without(b"/a.so", me, never), None);
        assert_eq!(without(b"", me, never), None);
    }

    #[test]
    fn a_different_spelling_of_the_same_file_is_removed() {
        let same = |a: &[u8], _: &[u8]| a == b"libcudart.so.12";
        assert_eq!(
            without(b"libcudart.so.12:/x.so", b"/abs/libcudart.so.12", same),
            Some(b"/x.so".to_vec())
        );
    }
}
