//! `encryptionKey`: the keyring from the JS option, and AES-GCM through the host's WebCrypto.

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::bindings::convert::well_formed;
use crate::bindings::errors::{invalid, JsResult};
use crate::bindings::host::object_entries;
use crate::caught;
use crate::store::{Cipher, Keyring, LocalBoxFuture, OpenFailure, StoreError, StoreResult};

#[wasm_bindgen(module = "/js/runtime.js")]
extern "C" {
    #[wasm_bindgen(js_name = isAesGcmKey)]
    fn is_aes_gcm_key(key: &JsValue) -> bool;
    #[wasm_bindgen(js_name = sealBytes)]
    fn seal_bytes(key: &JsValue, aad: &[u8], plain: &[u8]) -> Promise;
    #[wasm_bindgen(js_name = openBytes)]
    fn open_bytes(key: &JsValue, aad: &[u8], sealed: &[u8]) -> Promise;
}

/// The id of the key when `encryptionKey` is one `CryptoKey`: name it so in `keys` to rotate away.
pub const DEFAULT_KEY_ID: &str = "default";
/// Key ids travel in every sealed record.
const MAX_KEY_ID_BYTES: usize = 64;

/// The keys of `encryptionKey`, by id.
pub struct JsCipher {
    keys: Vec<(String, JsValue)>,
}

impl JsCipher {
    fn key(&self, id: &str) -> Option<&JsValue> {
        self.keys.iter().find(|(key_id, _)| key_id == id).map(|(_, key)| key)
    }
}

fn not_a_key(path: &str) -> JsValue {
    invalid(
        path,
        format!("{path} must be an AES-GCM CryptoKey with both \"encrypt\" and \"decrypt\" usages (crypto.subtle.generateKey({{ name: \"AES-GCM\", length: 256 }}, false, [\"encrypt\", \"decrypt\"]))"),
    )
}

/// `encryptionKey` as a keyring and a cipher: one `CryptoKey` (id `"default"`) or `{ current, keys }`.
pub fn parse(value: &JsValue) -> JsResult<(Keyring, JsCipher)> {
    const PATH: &str = "options.encryptionKey";
    if is_aes_gcm_key(value) {
        let keyring = Keyring { current: DEFAULT_KEY_ID.to_owned(), ids: vec![DEFAULT_KEY_ID.to_owned()] };
        return Ok((keyring, JsCipher { keys: vec![(DEFAULT_KEY_ID.to_owned(), value.clone())] }));
    }
    let field = |name: &str| caught::get(value, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
    let (current, keys) = (field("current"), field("keys"));
    // Neither a key nor `{ current, keys }` (a typed array has a `keys` method).
    if !value.is_object() || keys.is_undefined() || keys.is_function() {
        return Err(not_a_key(PATH));
    }
    if !keys.is_object() {
        return Err(invalid(&format!("{PATH}.keys"), format!("{PATH}.keys must be an object of key id -> CryptoKey")));
    }
    let mut cipher = JsCipher { keys: Vec::new() };
    for entry in object_entries(&keys, &format!("{PATH}.keys"))?.iter() {
        let entry: js_sys::Array = entry.unchecked_into();
        // Without lone surrogates: converted, two such ids would be one, sealing with the wrong key.
        let id = well_formed(&entry.get(0)).unwrap_or_default();
        let path = format!("{PATH}.keys.{id}");
        if id.is_empty() || id.len() > MAX_KEY_ID_BYTES {
            return Err(invalid(
                &path,
                format!("a key id must be 1 to {MAX_KEY_ID_BYTES} bytes, without lone surrogates"),
            ));
        }
        let key = entry.get(1);
        if !is_aes_gcm_key(&key) {
            return Err(not_a_key(&path));
        }
        cipher.keys.push((id, key));
    }
    let current = well_formed(&current).filter(|id| cipher.key(id).is_some()).ok_or_else(|| {
        invalid(
            &format!("{PATH}.current"),
            format!("{PATH}.current must be the id of one of {PATH}.keys (the key new records are sealed with)"),
        )
    })?;
    let ids = cipher.keys.iter().map(|(id, _)| id.clone()).collect();
    Ok((Keyring { current, ids }, cipher))
}

impl Cipher for JsCipher {
    fn seal(&self, key_id: &str, aad: &[u8], plain: &[u8]) -> LocalBoxFuture<'static, StoreResult<Vec<u8>>> {
        let sealing = self.key(key_id).map(|key| JsFuture::from(seal_bytes(key, aad, plain)));
        Box::pin(async move {
            let sealing = sealing.ok_or_else(|| StoreError::backend("no encryption key of the current id"))?;
            // `sealBytes` resolves to the error when WebCrypto refuses.
            let sealed = sealing.await.unwrap_or(JsValue::UNDEFINED);
            match sealed.dyn_into::<Uint8Array>() {
                Ok(sealed) => Ok(sealed.to_vec()),
                Err(cause) => Err(StoreError::Backend {
                    message: "encrypting a record failed (WebCrypto refused the key)".into(),
                    cause: Some(std::rc::Rc::new(cause)),
                }),
            }
        })
    }

    fn open(&self, key_id: &str, aad: &[u8], sealed: &[u8]) -> LocalBoxFuture<'static, Result<Vec<u8>, OpenFailure>> {
        let opening = self.key(key_id).map(|key| JsFuture::from(open_bytes(key, aad, sealed)));
        Box::pin(async move {
            // `openBytes` resolves to null when the key or the additional data is not the sealing one.
            let opened = opening.ok_or(OpenFailure::UnknownKey)?.await.unwrap_or(JsValue::NULL);
            opened.dyn_into::<Uint8Array>().map(|opened| opened.to_vec()).map_err(|_| OpenFailure::Failed)
        })
    }
}
