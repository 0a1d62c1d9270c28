//! Properties of the MST: the root depends only on the set of pairs
//! (insertion order, deletions and reloading from the store do not
//! matter), delete undoes insert, listing is sorted and complete, and range
//! queries agree with a sorted map.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::ops::Bound;

use atp_crypto::{cid_for_dag_cbor, Cid};
use atp_repo_mst::blockstore::MemoryBlockStore;
use atp_repo_mst::mst::{decode_node, key_height, Mst};
use proptest::prelude::*;

fn value(n: u32) -> Cid {
    cid_for_dag_cbor(&n.to_be_bytes())
}

/// Keys from a few collections with short record keys, so that trees of a
/// few hundred keys span several layers and neighbours share prefixes.
fn key() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "app.bsky.feed.post",
            "app.bsky.feed.like",
            "com.ex.a",
            "a",
        ]),
        "[a-zA-Z0-9_~:.-]{1,12}",
    )
        .prop_map(|(c, r)| format!("{c}/{r}"))
}

fn pairs() -> impl Strategy<Value = Vec<(String, u32)>> {
    prop::collection::btree_map(key(), any::<u32>(), 0..300)
        .prop_map(|m| m.into_iter().collect::<Vec<_>>())
}

fn build(pairs: &[(String, u32)]) -> Mst<MemoryBlockStore> {
    let mut tree = Mst::new(MemoryBlockStore::new());
    for (k, v) in pairs {
        tree.insert(k, value(*v)).unwrap();
    }
    tree
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn same_set_in_any_order_gives_the_same_root(
        pairs in pairs(),
        seed in any::<u64>(),
    ) {
        let mut shuffled = pairs.clone();
        // Deterministic shuffle from the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut a = build(&pairs);
        let mut b = build(&shuffled);
        let mut reversed = pairs.clone();
        reversed.reverse();
        let mut c = build(&reversed);
        let root = a.root().unwrap();
        prop_assert_eq!(root, b.root().unwrap());
        prop_assert_eq!(root, c.root().unwrap());
    }

    #[test]
    fn delete_undoes_insert(
        pairs in pairs(),
        extra in prop::collection::btree_map(key(), any::<u32>(), 1..50),
    ) {
        let base: BTreeMap<String, u32> = pairs.iter().cloned().collect();
        let extra: Vec<(String, u32)> =
            extra.into_iter().filter(|(k, _)| !base.contains_key(k)).collect();
        let mut tree = build(&pairs);
        let before = tree.root().unwrap();
        for (k, v) in &extra {
            prop_assert_eq!(tree.insert(k, value(*v)).unwrap(), None);
        }
        // Hash in between so cached CIDs must be invalidated correctly.
        tree.root().unwrap();
        for (k, v) in extra.iter().rev() {
            prop_assert_eq!(tree.remove(k).unwrap(), Some(value(*v)));
        }
        prop_assert_eq!(tree.root().unwrap(), before);
    }

    #[test]
    fn removing_everything_in_any_order_gives_the_empty_tree(pairs in pairs()) {
        let mut tree = build(&pairs);
        let mut empty = Mst::new(MemoryBlockStore::new());
        // Every other key from the front, then the rest from the back.
        let (even, odd): (Vec<_>, Vec<_>) = pairs.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        for (_, (k, _)) in even.iter().chain(odd.iter().rev()) {
            prop_assert!(tree.remove(k).unwrap().is_some());
        }
        prop_assert_eq!(tree.root().unwrap(), empty.root().unwrap());
        prop_assert_eq!(tree.layer().unwrap(), 0);
    }

    #[test]
    fn listing_is_sorted_and_complete(pairs in pairs()) {
        let tree = build(&pairs);
        let listed: Vec<(String, Cid)> = tree.leaves().map(|l| l.unwrap()).collect();
        let expected: Vec<(String, Cid)> =
            pairs.iter().map(|(k, v)| (k.clone(), value(*v))).collect();
        prop_assert_eq!(&listed, &expected);
        let mut backwards: Vec<(String, Cid)> =
            tree.range(Bound::Unbounded, Bound::Unbounded, true).map(|l| l.unwrap()).collect();
        backwards.reverse();
        prop_assert_eq!(&backwards, &expected);
        prop_assert_eq!(tree.len().unwrap(), pairs.len());
        for (k, v) in &pairs {
            prop_assert_eq!(tree.get(k).unwrap(), Some(value(*v)));
        }
    }

    #[test]
    fn ranges_agree_with_a_sorted_map(
        pairs in pairs(),
        lo in key(),
        hi in key(),
        lo_kind in 0..3u8,
        hi_kind in 0..3u8,
        reverse in any::<bool>(),
    ) {
        let map: BTreeMap<String, Cid> =
            pairs.iter().map(|(k, v)| (k.clone(), value(*v))).collect();
        let bound = |kind: u8, k: &String| -> Bound<String> {
            match kind {
                0 => Bound::Unbounded,
                1 => Bound::Included(k.clone()),
                _ => Bound::Excluded(k.clone()),
            }
        };
        let (lower, upper) = (bound(lo_kind, &lo), bound(hi_kind, &hi));
        let empty_range = match (&lower, &upper) {
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
                a > b || (a == b && !(matches!(lower, Bound::Included(_)) && matches!(upper, Bound::Included(_))))
            }
            _ => false,
        };
        let mut expected: Vec<(String, Cid)> = if empty_range {
            Vec::new()
        } else {
            map.range((lower.clone(), upper.clone())).map(|(k, v)| (k.clone(), *v)).collect()
        };
        if reverse {
            expected.reverse();
        }
        let tree = build(&pairs);
        let got: Vec<(String, Cid)> =
            tree.range(as_str_bound(&lower), as_str_bound(&upper), reverse).map(|l| l.unwrap()).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn lazy_tree_agrees_with_the_in_memory_one(
        pairs in pairs(),
        more in prop::collection::btree_map(key(), any::<u32>(), 0..60),
        removals in prop::collection::vec(any::<prop::sample::Index>(), 0..60),
    ) {
        // Build, write, reopen lazily; apply the same edits to both.
        let mut memory = build(&pairs);
        let store = MemoryBlockStore::new();
        let mut first = Mst::new(&store);
        for (k, v) in &pairs {
            first.insert(k, value(*v)).unwrap();
        }
        let (root, blocks) = first.flush().unwrap();
        for bytes in blocks.values() {
            decode_node(bytes).unwrap();
        }
        let mut lazy = Mst::load(&store, root);
        for (k, v) in &more {
            prop_assert_eq!(lazy.insert(k, value(*v)).unwrap(), memory.insert(k, value(*v)).unwrap());
        }
        if !pairs.is_empty() {
            for index in &removals {
                let k = &pairs[index.index(pairs.len())].0;
                prop_assert_eq!(lazy.remove(k).unwrap(), memory.remove(k).unwrap());
            }
        }
        prop_assert_eq!(lazy.root().unwrap(), memory.root().unwrap());
        // Only new nodes are written the second time, and they suffice to
        // read the whole tree back.
        let (root, new_blocks) = lazy.flush().unwrap();
        for cid in new_blocks.keys() {
            prop_assert!(!blocks.contains_key(cid));
        }
        let reread = Mst::load(&store, root);
        let a: Vec<_> = reread.leaves().map(|l| l.unwrap()).collect();
        let b: Vec<_> = memory.leaves().map(|l| l.unwrap()).collect();
        prop_assert_eq!(a, b);
    }
}

fn as_str_bound(b: &Bound<String>) -> Bound<&str> {
    match b {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(k) => Bound::Included(k.as_str()),
        Bound::Excluded(k) => Bound::Excluded(k.as_str()),
    }
}

#[test]
fn root_layer_is_the_highest_key_height() {
    let keys: Vec<String> = (0..2000).map(|i| format!("com.ex.a/k{i}")).collect();
    let mut tree = Mst::new(MemoryBlockStore::new());
    let mut top = 0;
    for (i, k) in keys.iter().enumerate() {
        tree.insert(k, value(i as u32)).unwrap();
        top = top.max(key_height(k.as_bytes()));
        assert_eq!(tree.layer().unwrap(), top);
    }
}

#[test]
fn invalid_keys_are_rejected() {
    let mut tree = Mst::new(MemoryBlockStore::new());
    let long = format!("a/{}", "b".repeat(1023));
    for bad in [
        "",
        "nocollection",
        "/rkey",
        "coll/",
        "a/b/c",
        "a/b c",
        "a/é",
        long.as_str(),
    ] {
        assert!(
            matches!(
                tree.insert(bad, value(0)),
                Err(atp_repo_mst::Error::InvalidMstKey(_))
            ),
            "{bad:?}"
        );
    }
    let max = format!("a/{}", "b".repeat(1022));
    tree.insert(&max, value(0)).unwrap();
}

#[test]
fn list_collection_pages() {
    let mut tree = Mst::new(MemoryBlockStore::new());
    let mut rkeys = Vec::new();
    for i in 0..100u32 {
        let rkey = format!("r{i:03}");
        tree.insert(&format!("app.bsky.feed.post/{rkey}"), value(i))
            .unwrap();
        tree.insert(&format!("app.bsky.feed.like/{rkey}"), value(i))
            .unwrap();
        tree.insert(&format!("app.bsky.feed.postgate/{rkey}"), value(i))
            .unwrap();
        rkeys.push(rkey);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = tree
            .list_collection("app.bsky.feed.post", cursor.as_deref(), 30, false)
            .unwrap();
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(|(r, _)| r.clone());
        seen.extend(page.into_iter().map(|(r, _)| r));
    }
    assert_eq!(seen, rkeys);
    let back = tree
        .list_collection("app.bsky.feed.post", Some("r050"), 5, true)
        .unwrap();
    let back: Vec<&str> = back.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(back, ["r049", "r048", "r047", "r046", "r045"]);
}
