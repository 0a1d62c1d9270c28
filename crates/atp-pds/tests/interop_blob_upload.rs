//! uploadBlob's answer (CID, MIME type, size) compared with what the
//! reference PDS records for the same bytes: its CID computation and the
//! `file-type` sniffer its blob transactor uses, run by Node.js
//! (`tests/interop/blob-upload-meta.mjs`).
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::Pds;
use serde_json::{json, Value};

/// The type the uploads declare: what both sides answer when the bytes
/// say nothing.
const DECLARED: &str = "application/x-declared";

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn le32(n: u32) -> [u8; 4] {
    n.to_le_bytes()
}

/// An ASF (Windows Media) header with a file properties object and a video
/// stream properties object.
fn asf_video() -> Vec<u8> {
    let object = |guid: &[u8], payload: &[u8]| {
        let size = (24 + payload.len()) as u64;
        cat(&[guid, &size.to_le_bytes(), payload])
    };
    let file_properties = object(
        &[
            0xa1, 0xdc, 0xab, 0x8c, 0x47, 0xa9, 0xcf, 0x11, 0x8e, 0xe4, 0x00, 0xc0, 0x0c, 0x20,
            0x53, 0x65,
        ],
        &[0; 80],
    );
    let video_type = [
        0xc0, 0xef, 0x19, 0xbc, 0x4d, 0x5b, 0xcf, 0x11, 0xa8, 0xfd, 0x00, 0x80, 0x5f, 0x5c, 0x44,
        0x2b,
    ];
    let stream_properties = object(
        &[
            0x91, 0x07, 0xdc, 0xb7, 0xb7, 0xa9, 0xcf, 0x11, 0x8e, 0xe6, 0x00, 0xc0, 0x0c, 0x20,
            0x53, 0x65,
        ],
        &cat(&[&video_type, &[0; 40]]),
    );
    let objects = cat(&[&file_properties, &stream_properties]);
    let header_size = (30 + objects.len()) as u64;
    cat(&[
        &[
            0x30, 0x26, 0xb2, 0x75, 0x8e, 0x66, 0xcf, 0x11, 0xa6, 0xd9, 0x00, 0xaa, 0x00, 0x62,
            0xce, 0x6c,
        ],
        &header_size.to_le_bytes(),
        &[2, 0, 0, 0, 1, 2],
        &objects,
        &[0; 100],
    ])
}

/// File headers of common formats (built here from the formats' magic
/// numbers), text that a sniffer might mistake, and plain binary.
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let filler = |n: usize| (0..n).map(|i| (i * 7 % 256) as u8).collect::<Vec<u8>>();
    let ebml_webm = vec![
        0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01, 0x42, 0xf7, 0x81, 0x01, 0x42, 0xf2,
        0x81, 0x04, 0x42, 0xf3, 0x81, 0x08, 0x42, 0x82, 0x84, b'w', b'e', b'b', b'm', 0x42, 0x87,
        0x81, 0x02, 0x42, 0x85, 0x81, 0x02,
    ];
    let matroska = vec![
        0x1a, 0x45, 0xdf, 0xa3, 0xa3, 0x42, 0x86, 0x81, 0x01, 0x42, 0xf7, 0x81, 0x01, 0x42, 0xf2,
        0x81, 0x04, 0x42, 0xf3, 0x81, 0x08, 0x42, 0x82, 0x88, b'm', b'a', b't', b'r', b'o', b's',
        b'k', b'a', 0x42, 0x87, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02,
    ];
    let ftyp = |brand: &[u8]| {
        cat(&[
            &[0, 0, 0, 0x18],
            b"ftyp",
            brand,
            &[0, 0, 0, 0],
            brand,
            b"isom",
            &filler(64),
        ])
    };
    vec![
        (
            "png",
            cat(&[
                &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a],
                &[0, 0, 0, 13],
                b"IHDR",
                &[0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0],
                &filler(32),
            ]),
        ),
        (
            "jpeg",
            cat(&[
                &[0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10],
                b"JFIF\0",
                &[1, 1, 0, 0, 1, 0, 1, 0, 0],
                &filler(32),
            ]),
        ),
        (
            "gif",
            cat(&[b"GIF89a", &[1, 0, 1, 0, 0x80, 0, 0], &filler(16)]),
        ),
        ("webp", cat(&[b"RIFF", &le32(40), b"WEBPVP8 ", &filler(32)])),
        ("wav", cat(&[b"RIFF", &le32(40), b"WAVEfmt ", &filler(32)])),
        ("tiff", cat(&[b"II*\0", &le32(8), &filler(32)])),
        (
            "bmp",
            cat(&[
                b"BM",
                &le32(70),
                &[0, 0, 0, 0],
                &le32(54),
                &le32(40),
                &filler(48),
            ]),
        ),
        (
            "ico",
            cat(&[&[0, 0, 1, 0, 1, 0, 16, 16, 0, 0, 1, 0, 32, 0], &filler(16)]),
        ),
        ("pdf", cat(&[b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", &filler(16)])),
        (
            "gzip",
            cat(&[&[0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3], &filler(16)]),
        ),
        ("bzip2", cat(&[b"BZh91AY&SY", &filler(16)])),
        (
            "7z",
            cat(&[&[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c, 0, 4], &filler(24)]),
        ),
        (
            "xz",
            cat(&[&[0xfd, b'7', b'z', b'X', b'Z', 0, 0, 4], &filler(24)]),
        ),
        ("mp4", ftyp(b"mp42")),
        ("quicktime", ftyp(b"qt  ")),
        ("heic", ftyp(b"heic")),
        ("avif", ftyp(b"avif")),
        ("webm", cat(&[&ebml_webm, &filler(16)])),
        (
            "mp3-id3",
            cat(&[
                b"ID3",
                &[4, 0, 0, 0, 0, 0, 0],
                &[0xff, 0xfb, 0x90, 0x64],
                &filler(64),
            ]),
        ),
        ("flac", cat(&[b"fLaC", &[0, 0, 0, 0x22], &filler(34)])),
        (
            "ogg-opus",
            cat(&[
                b"OggS",
                &[0, 2],
                &[0; 20],
                &[1, 19],
                b"OpusHead",
                &filler(16),
            ]),
        ),
        ("m4a", ftyp(b"M4A ")),
        ("3gp", ftyp(b"3gp4")),
        ("heif-mif1", ftyp(b"mif1")),
        ("mkv", cat(&[&matroska, &filler(16)])),
        ("avi", cat(&[b"RIFF", &le32(40), b"AVI LIST", &filler(32)])),
        ("mp3-frame", cat(&[&[0xff, 0xfb, 0x90, 0x64], &filler(400)])),
        (
            "aac-adts",
            cat(&[&[0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc], &filler(64)]),
        ),
        (
            "ogg-vorbis",
            cat(&[
                b"OggS",
                &[0, 2],
                &[0; 20],
                &[1, 30],
                b"\x01vorbis",
                &filler(32),
            ]),
        ),
        (
            "ogg-theora",
            cat(&[
                b"OggS",
                &[0, 2],
                &[0; 20],
                &[1, 42],
                b"\x80theora",
                &filler(48),
            ]),
        ),
        (
            "midi",
            cat(&[b"MThd", &[0, 0, 0, 6, 0, 1, 0, 1, 0, 96], &filler(16)]),
        ),
        ("psd", cat(&[b"8BPS", &[0, 1], &filler(40)])),
        ("jxl", cat(&[&[0xff, 0x0a], &filler(32)])),
        ("rtf", b"{\\rtf1\\ansi hello}".to_vec()),
        ("ttf", cat(&[&[0, 1, 0, 0, 0], &filler(40)])),
        ("otf", cat(&[b"OTTO", &[0], &filler(40)])),
        ("exe", cat(&[b"MZ", &filler(200)])),
        (
            "zip",
            cat(&[
                b"PK\x03\x04",
                &[20, 0, 0, 0, 0, 0],
                &[0; 16],
                &[5, 0, 0, 0],
                b"a.txt",
                b"hello",
            ]),
        ),
        ("rar", cat(&[b"Rar!\x1a\x07\x01\x00", &filler(24)])),
        ("swf", cat(&[b"FWS", &[10], &filler(24)])),
        (
            "apng-like-mng",
            cat(&[
                &[0x8a, b'M', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a],
                &filler(24),
            ]),
        ),
        ("wasm", cat(&[b"\0asm", &[1, 0, 0, 0], &filler(8)])),
        ("m4v", ftyp(b"M4V ")),
        (
            "jp2",
            cat(&[
                &[0, 0, 0, 0x0c],
                b"jP  \r\n\x87\n",
                &[0, 0, 0, 0x14],
                b"ftypjp2 ",
                &filler(24),
            ]),
        ),
        ("cr2", cat(&[b"II*\0\x10\0\0\0CR\x02\0", &filler(24)])),
        ("jxr", cat(&[&[0x49, 0x49, 0xbc, 0x01], &filler(24)])),
        ("flv", cat(&[b"FLV\x01\x05\0\0\0\x09", &filler(24)])),
        ("mpeg-ps", cat(&[&[0, 0, 1, 0xba, 0x44], &filler(40)])),
        (
            "asf",
            cat(&[
                &[
                    0x30, 0x26, 0xb2, 0x75, 0x8e, 0x66, 0xcf, 0x11, 0xa6, 0xd9, 0, 0xaa, 0, 0x62,
                    0xce, 0x6c,
                ],
                &filler(64),
            ]),
        ),
        ("asf-video", asf_video()),
        ("amr", cat(&[b"#!AMR\n", &filler(24)])),
        (
            "aiff",
            cat(&[b"FORM", &[0, 0, 0, 40], b"AIFF", &filler(32)]),
        ),
        ("ape", cat(&[b"MAC ", &[0x96, 0x0f], &filler(40)])),
        ("dsf", cat(&[b"DSD ", &filler(40)])),
        ("zstd", cat(&[&[0x28, 0xb5, 0x2f, 0xfd], &filler(24)])),
        ("lz4", cat(&[&[0x04, 0x22, 0x4d, 0x18], &filler(24)])),
        ("compress-z", cat(&[&[0x1f, 0x9d, 0x90], &filler(24)])),
        ("rpm", cat(&[&[0xed, 0xab, 0xee, 0xdb], &filler(96)])),
        ("cab", cat(&[b"MSCF\0\0\0\0", &filler(40)])),
        (
            "class",
            cat(&[&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52], &filler(24)]),
        ),
        ("dex", cat(&[b"dex\n035\0", &filler(40)])),
        (
            "mach-o",
            cat(&[&[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1], &filler(40)]),
        ),
        ("postscript", b"%!PS-Adobe-3.0\n%%Title: x\n".to_vec()),
        ("eot", cat(&[&[0; 34], b"LP", &filler(40)])),
        ("nes", cat(&[b"NES\x1a", &filler(24)])),
        ("crx", cat(&[b"Cr24", &[3, 0, 0, 0], &filler(24)])),
        ("lzip", cat(&[b"LZIP\x01", &filler(24)])),
        ("cpio", cat(&[b"070707", &filler(80)])),
        ("ar-deb", cat(&[b"!<arch>\ndebian-binary   ", &filler(60)])),
        (
            "djvu",
            cat(&[b"AT&TFORM", &[0, 0, 0, 40], b"DJVM", &filler(24)]),
        ),
        ("tar", cat(&[&filler(257), b"ustar\x0000", &filler(250)])),
        ("sqlite", cat(&[b"SQLite format 3\0", &filler(84)])),
        ("elf", cat(&[b"\x7fELF", &[2, 1, 1, 0], &filler(56)])),
        ("woff", cat(&[b"wOFF", &[0, 1, 0, 0], &filler(40)])),
        ("woff2", cat(&[b"wOF2", &[0, 1, 0, 0], &filler(40)])),
        (
            "html",
            b"<!DOCTYPE html>\n<html><head><title>x</title></head><body>hi</body></html>\n"
                .to_vec(),
        ),
        (
            "xml",
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<note><to>x</to></note>\n".to_vec(),
        ),
        (
            "svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\" height=\"1\"></svg>\n".to_vec(),
        ),
        ("shell", b"#!/bin/sh\necho hello\n".to_vec()),
        ("json", b"{\"hello\": \"world\"}\n".to_vec()),
        ("text", b"just some plain text, nothing more\n".to_vec()),
        ("binary", filler(300)),
        ("one-byte", vec![0x42]),
    ]
}

#[tokio::test]
async fn upload_answers_match_the_reference_for_a_corpus_of_formats() {
    let samples = corpus();
    let expected = atp_test_vectors::run_node(
        "blob-upload-meta.mjs",
        &json!({
            "declared": DECLARED,
            "samples": samples
                .iter()
                .map(|(name, bytes)| json!({"name": name, "hex": hex::encode(bytes)}))
                .collect::<Vec<_>>(),
        }),
    );
    let expected = expected["results"].as_array().unwrap();
    assert_eq!(expected.len(), samples.len());

    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let client = pds.bearer(&alice.access_jwt);
    let mut mismatches = Vec::new();
    for ((name, bytes), reference) in samples.iter().zip(expected) {
        assert_eq!(reference["name"], *name);
        let body = client
            .procedure_bytes(
                "com.atproto.repo.uploadBlob",
                &(),
                DECLARED,
                Bytes::copy_from_slice(bytes),
            )
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(&body.bytes).unwrap();
        let blob = &answer["blob"];
        assert_eq!(blob["$type"], "blob", "{name}");
        assert_eq!(blob["ref"]["$link"], reference["cid"], "{name}");
        assert_eq!(blob["size"], reference["size"], "{name}");
        if blob["mimeType"] != reference["mimeType"] {
            mismatches.push(format!(
                "{name}: ours {} reference {}",
                blob["mimeType"], reference["mimeType"]
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "MIME types differ:\n{}",
        mismatches.join("\n")
    );
    atp_test_vectors::report("blob-upload-meta.mjs (format corpus)", samples.len());
    pds.stop().await;
}
