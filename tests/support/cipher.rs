//! A stand-in AEAD for native tests of the sealing layer (WebCrypto's AES-GCM is what ships; the JS
//! and browser suites use it): a keystream XOR with a keyed tag over the IV, the additional data and
//! the ciphertext, so that a wrong key, changed bytes or other additional data fail to open. Not
//! cryptography; it counts its calls.

use std::cell::Cell;
use std::rc::Rc;

use agent_session::store::{Cipher, Keyring, LocalBoxFuture, OpenFailure, StoreResult};

pub struct TestCipher {
    keys: Vec<(String, u64)>,
    next_iv: Cell<u64>,
    pub calls: Cell<u64>,
}

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn tag(key: u64, iv: u64, aad: &[u8], ct: &[u8]) -> u64 {
    let mut h = mix(key ^ iv);
    for (i, byte) in aad.iter().chain([0xFFu8].iter()).chain(ct).enumerate() {
        h = mix(h ^ (u64::from(*byte) << (i % 56)) ^ i as u64);
    }
    h
}

fn xor(key: u64, iv: u64, bytes: &[u8]) -> Vec<u8> {
    bytes.iter().enumerate().map(|(i, b)| b ^ (mix(key ^ iv ^ (i as u64).wrapping_mul(31)) as u8)).collect()
}

impl TestCipher {
    /// Keys by id, each a number; the keyring seals with `current`.
    pub fn new(keys: &[(&str, u64)], current: &str) -> (Rc<TestCipher>, Keyring) {
        let cipher = TestCipher {
            keys: keys.iter().map(|(id, key)| (id.to_string(), *key)).collect(),
            next_iv: Cell::new(1),
            calls: Cell::new(0),
        };
        let keyring = Keyring { current: current.to_owned(), ids: keys.iter().map(|(id, _)| id.to_string()).collect() };
        (Rc::new(cipher), keyring)
    }

    fn key(&self, id: &str) -> Option<u64> {
        self.keys.iter().find(|(key_id, _)| key_id == id).map(|(_, key)| *key)
    }
}

impl Cipher for TestCipher {
    fn seal(&self, key_id: &str, aad: &[u8], plain: &[u8]) -> LocalBoxFuture<'static, StoreResult<Vec<u8>>> {
        self.calls.set(self.calls.get() + 1);
        let key = self.key(key_id).expect("sealing with a key the test gave");
        let iv = self.next_iv.get();
        self.next_iv.set(iv + 1);
        let ct = xor(key, iv, plain);
        let mut out = iv.to_le_bytes().to_vec();
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag(key, iv, aad, &ct).to_le_bytes());
        Box::pin(std::future::ready(Ok(out)))
    }

    fn open(&self, key_id: &str, aad: &[u8], sealed: &[u8]) -> LocalBoxFuture<'static, Result<Vec<u8>, OpenFailure>> {
        self.calls.set(self.calls.get() + 1);
        let result = (|| {
            let key = self.key(key_id).ok_or(OpenFailure::UnknownKey)?;
            if sealed.len() < 20 {
                return Err(OpenFailure::Failed);
            }
            let iv = u64::from_le_bytes(sealed[..8].try_into().unwrap());
            let (ct, mac) = sealed[12..].split_at(sealed.len() - 20);
            if tag(key, iv, aad, ct).to_le_bytes() != mac {
                return Err(OpenFailure::Failed);
            }
            Ok(xor(key, iv, ct))
        })();
        Box::pin(std::future::ready(result))
    }
}
