//! Replay reads whatever a disk hands back without panicking: any octets after a valid
//! segment header scan to records and reported damage, and every record read re-encodes to
//! the octets it was read from.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use smppgw::store::record::{self, Frame, SegmentHeader};

fuzz_target!(|data: &[u8]| {
    let header = SegmentHeader {
        shard: 0,
        seq: 1,
        align: 512,
        salt: 7,
        created_ms: 0,
    };
    let mut seg = vec![0u8; header.data_start()];
    seg[..64].copy_from_slice(&header.encode());
    seg.extend_from_slice(data);
    let seg = Bytes::from(seg);
    let scan = record::scan(&seg, &header);
    for (offset, rec) in &scan.records {
        let mut again = BytesMut::new();
        record::encode(rec, header.salt, &mut again);
        assert_eq!(&seg[*offset..*offset + again.len()], &again[..]);
        assert!(matches!(record::frame_at(&seg, *offset, header.salt, 512), Frame::Record { .. }));
    }
});
