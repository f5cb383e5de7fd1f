//! Mumble's voice encryption: OCB2 with AES-128, a 16-byte nonce counted
//! up per packet, and a packet header of the nonce's low byte and the first
//! 3 bytes of the tag (4 bytes in all).
//!
//! Written from the OCB2 definition (Rogaway's OCB 2.0: offsets doubled in
//! GF(2^128) per block, the last block padded with the encrypted length,
//! the tag over the checksum under the tripled offset) and Mumble's packet
//! layout. The receiver follows the sender's nonce from the low byte alone:
//! a packet one ahead is the normal case, a few ahead means packets were
//! lost, a few behind is a late packet, decrypted without moving the nonce.

use aes::Aes128;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};

/// AES block and OCB2 nonce size.
const BLOCK: usize = 16;
/// Bytes a packet grows by: the nonce's low byte and 3 bytes of tag.
pub const OVERHEAD: usize = 4;
/// How far ahead of or behind the expected nonce a packet may be: packets
/// lost or late within this window are followed, anything further is
/// refused (as a replay or garbage).
const WINDOW: i32 = 30;

/// Why a packet could not be decrypted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptError {
    /// Shorter than the 4-byte header.
    #[error("packet of {0} bytes is shorter than its header")]
    Short(usize),
    /// Its nonce is too far from the expected one.
    #[error("packet's nonce is out of the receive window")]
    OutOfWindow,
    /// The tag does not match: wrong key, or the packet was altered.
    #[error("packet's tag does not match")]
    BadTag,
}

/// One direction's keys and nonces of a Mumble UDP session, as the server's
/// `CryptSetup` message gives them.
pub struct CryptState {
    cipher: Aes128,
    encrypt_iv: [u8; BLOCK],
    decrypt_iv: [u8; BLOCK],
}

impl std::fmt::Debug for CryptState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptState").finish_non_exhaustive()
    }
}

impl CryptState {
    /// A client's state: it encrypts with the `client_nonce` the server
    /// sent and decrypts with its `server_nonce`.
    #[must_use]
    pub fn new(key: [u8; BLOCK], encrypt_iv: [u8; BLOCK], decrypt_iv: [u8; BLOCK]) -> Self {
        Self {
            cipher: Aes128::new(&key.into()),
            encrypt_iv,
            decrypt_iv,
        }
    }

    /// Encrypts `plain` into a packet (header + ciphertext), counting the
    /// nonce up.
    #[must_use]
    pub fn encrypt(&mut self, plain: &[u8]) -> Vec<u8> {
        increment(&mut self.encrypt_iv);
        let mut packet = vec![0u8; plain.len() + OVERHEAD];
        let tag = self.ocb_encrypt(plain, &mut packet[OVERHEAD..], &self.encrypt_iv);
        packet[0] = self.encrypt_iv[0];
        packet[1..OVERHEAD].copy_from_slice(&tag[..OVERHEAD - 1]);
        packet
    }

    /// Decrypts `packet` into `plain` (cleared first). The nonce moves
    /// only when the packet is genuine and not late.
    pub fn decrypt(&mut self, packet: &[u8], plain: &mut Vec<u8>) -> Result<(), CryptError> {
        if packet.len() < OVERHEAD {
            return Err(CryptError::Short(packet.len()));
        }
        let (iv, advances) = self.nonce_of(packet[0])?;
        plain.clear();
        plain.resize(packet.len() - OVERHEAD, 0);
        let tag = self.ocb_decrypt(&packet[OVERHEAD..], plain, &iv);
        if tag[..OVERHEAD - 1] != packet[1..OVERHEAD] {
            plain.clear();
            return Err(CryptError::BadTag);
        }
        if advances {
            self.decrypt_iv = iv;
        }
        Ok(())
    }

    /// The full nonce of a packet whose low byte is `low`, and whether it
    /// is ahead of the last one (so the receiver moves to it).
    fn nonce_of(&self, low: u8) -> Result<([u8; BLOCK], bool), CryptError> {
        let current = self.decrypt_iv[0];
        let diff = i32::from(low) - i32::from(current);
        // The distance the low byte moved, taking its wrap into account.
        let step = if diff > 128 {
            diff - 256
        } else if diff < -128 {
            diff + 256
        } else {
            diff
        };
        if step == 0 || step.abs() > WINDOW {
            return Err(CryptError::OutOfWindow);
        }
        let mut iv = self.decrypt_iv;
        iv[0] = low;
        if step > 0 && low < current {
            // Ahead across the wrap of the low byte: carry.
            carry_up(&mut iv);
        } else if step < 0 && low > current {
            // Behind across the wrap: borrow.
            borrow_down(&mut iv);
        }
        Ok((iv, step > 0))
    }

    fn encrypt_block(&self, block: &mut [u8; BLOCK]) {
        self.cipher.encrypt_block(block.into());
    }

    fn decrypt_block(&self, block: &mut [u8; BLOCK]) {
        self.cipher.decrypt_block(block.into());
    }

    /// OCB2 encryption of `plain` into `out` (same length); returns the tag.
    fn ocb_encrypt(&self, plain: &[u8], out: &mut [u8], nonce: &[u8; BLOCK]) -> [u8; BLOCK] {
        let mut delta = *nonce;
        self.encrypt_block(&mut delta);
        let mut checksum = [0u8; BLOCK];
        let full = plain.len().saturating_sub(1) / BLOCK;
        for i in 0..full {
            let range = i * BLOCK..(i + 1) * BLOCK;
            times2(&mut delta);
            let mut block: [u8; BLOCK] = plain[range.clone()].try_into().expect("a block");
            xor(&mut checksum, &block);
            xor(&mut block, &delta);
            self.encrypt_block(&mut block);
            xor(&mut block, &delta);
            out[range].copy_from_slice(&block);
        }
        let last = &plain[full * BLOCK..];
        times2(&mut delta);
        let pad = self.length_pad(&delta, last.len());
        let mut padded = pad;
        padded[..last.len()].copy_from_slice(last);
        xor(&mut checksum, &padded);
        for (o, (p, k)) in out[full * BLOCK..].iter_mut().zip(last.iter().zip(pad)) {
            *o = p ^ k;
        }
        self.tag(delta, checksum)
    }

    /// OCB2 decryption of `cipher` into `out` (same length); returns the
    /// tag to compare.
    fn ocb_decrypt(&self, cipher: &[u8], out: &mut [u8], nonce: &[u8; BLOCK]) -> [u8; BLOCK] {
        let mut delta = *nonce;
        self.encrypt_block(&mut delta);
        let mut checksum = [0u8; BLOCK];
        let full = cipher.len().saturating_sub(1) / BLOCK;
        for i in 0..full {
            let range = i * BLOCK..(i + 1) * BLOCK;
            times2(&mut delta);
            let mut block: [u8; BLOCK] = cipher[range.clone()].try_into().expect("a block");
            xor(&mut block, &delta);
            self.decrypt_block(&mut block);
            xor(&mut block, &delta);
            xor(&mut checksum, &block);
            out[range].copy_from_slice(&block);
        }
        let last = &cipher[full * BLOCK..];
        times2(&mut delta);
        let mut padded = self.length_pad(&delta, last.len());
        for (p, c) in padded.iter_mut().zip(last) {
            *p ^= c;
        }
        xor(&mut checksum, &padded);
        out[full * BLOCK..].copy_from_slice(&padded[..last.len()]);
        self.tag(delta, checksum)
    }

    /// The last block's pad: the encrypted bit length under the offset.
    fn length_pad(&self, delta: &[u8; BLOCK], len: usize) -> [u8; BLOCK] {
        let mut pad = [0u8; BLOCK];
        let bits = u32::try_from(len * 8).expect("a block's bit length");
        pad[BLOCK - 4..].copy_from_slice(&bits.to_be_bytes());
        xor(&mut pad, delta);
        self.encrypt_block(&mut pad);
        pad
    }

    /// The tag: the checksum encrypted under the tripled offset.
    fn tag(&self, mut delta: [u8; BLOCK], checksum: [u8; BLOCK]) -> [u8; BLOCK] {
        let doubled = {
            let mut d = delta;
            times2(&mut d);
            d
        };
        xor(&mut delta, &doubled);
        xor(&mut delta, &checksum);
        self.encrypt_block(&mut delta);
        delta
    }
}

fn xor(into: &mut [u8; BLOCK], other: &[u8; BLOCK]) {
    for (a, b) in into.iter_mut().zip(other) {
        *a ^= b;
    }
}

/// Multiplication by x in GF(2^128), big-endian, as OCB2 doubles offsets.
fn times2(block: &mut [u8; BLOCK]) {
    let carry = block[0] >> 7;
    for i in 0..BLOCK - 1 {
        block[i] = (block[i] << 1) | (block[i + 1] >> 7);
    }
    block[BLOCK - 1] = (block[BLOCK - 1] << 1) ^ (carry * 0x87);
}

/// Counts a nonce up by one: byte 0 is the lowest.
fn increment(iv: &mut [u8; BLOCK]) {
    for byte in iv.iter_mut() {
        *byte = byte.wrapping_add(1);
        if *byte != 0 {
            break;
        }
    }
}

/// Carries one into the bytes above the low byte.
fn carry_up(iv: &mut [u8; BLOCK]) {
    for byte in iv[1..].iter_mut() {
        *byte = byte.wrapping_add(1);
        if *byte != 0 {
            break;
        }
    }
}

/// Borrows one from the bytes above the low byte.
fn borrow_down(iv: &mut [u8; BLOCK]) {
    for byte in iv[1..].iter_mut() {
        let was = *byte;
        *byte = was.wrapping_sub(1);
        if was != 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (CryptState, CryptState) {
        let key = [7u8; BLOCK];
        let (a, b) = ([1u8; BLOCK], [2u8; BLOCK]);
        (CryptState::new(key, a, b), CryptState::new(key, b, a))
    }

    #[test]
    fn the_ocb2_reference_vectors() {
        // OCB 2.0's published vectors: key and nonce 00 01 … 0f.
        let counting: [u8; BLOCK] = std::array::from_fn(|i| i as u8);
        let state = CryptState::new(counting, counting, counting);
        let mut out = Vec::new();
        let tag = state.ocb_encrypt(&[], &mut out, &counting);
        assert_eq!(hex(&tag), "bf3108130773ad5ec70ec69e7875a7b0");
        let plain: Vec<u8> = (0..8).collect();
        let mut out = vec![0u8; 8];
        let tag = state.ocb_encrypt(&plain, &mut out, &counting);
        assert_eq!(hex(&out), "c636b3a868f429bb");
        assert_eq!(hex(&tag), "a45f5fdea5c088d1d7c8be37cabc8c5c");
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn every_length_round_trips_and_a_flipped_bit_is_refused() {
        let (mut sender, mut receiver) = pair();
        let mut plain = Vec::new();
        for len in 0..70 {
            let message: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
            let packet = sender.encrypt(&message);
            assert_eq!(packet.len(), len + OVERHEAD);
            if len > 0 {
                let mut altered = packet.clone();
                altered[OVERHEAD + len / 2] ^= 1;
                assert_eq!(
                    receiver.clone_state().decrypt(&altered, &mut plain),
                    Err(CryptError::BadTag)
                );
            }
            receiver.decrypt(&packet, &mut plain).expect("genuine");
            assert_eq!(plain, message, "length {len}");
        }
    }

    #[test]
    fn lost_and_late_packets_are_followed_across_the_low_bytes_wrap() {
        let (mut sender, mut receiver) = pair();
        let mut plain = Vec::new();
        let packets: Vec<Vec<u8>> = (0..600u32)
            .map(|i| sender.encrypt(&i.to_le_bytes()))
            .collect();
        // Every third packet lost; each tenth arrives after the next one.
        let mut order: Vec<usize> = (0..600).filter(|i| i % 3 != 0).collect();
        for pair in order.chunks_mut(10) {
            if pair.len() > 1 {
                pair.swap(0, 1);
            }
        }
        for i in order {
            receiver.decrypt(&packets[i], &mut plain).expect("followed");
            assert_eq!(plain, (i as u32).to_le_bytes());
        }
        // A replay of an old packet is out of the window.
        assert_eq!(
            receiver.decrypt(&packets[10], &mut plain),
            Err(CryptError::OutOfWindow)
        );
    }

    impl CryptState {
        fn clone_state(&self) -> Self {
            Self {
                cipher: self.cipher.clone(),
                encrypt_iv: self.encrypt_iv,
                decrypt_iv: self.decrypt_iv,
            }
        }
    }
}
