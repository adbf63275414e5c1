//! Decentralised identifiers used by the directory: `did:key` (multibase
//! base58btc over a multicodec-prefixed public key) and `did:pkh:eip155`
//! (a wallet account), plus CAIP-10 account strings.

use super::error::DirError;

/// Multicodec prefix of an Ed25519 public key (identity keys).
pub const ED25519: [u8; 2] = [0xed, 0x01];
/// Multicodec prefix of an X25519 public key (invite keys).
pub const X25519: [u8; 2] = [0xec, 0x01];

const DID_KEY_PREFIX: &str = "did:key:";
const DID_PKH_PREFIX: &str = "did:pkh:";

/// Decodes a `did:key` whose key carries `codec` and is 32 bytes long.
pub fn decode_key(did: &str, codec: [u8; 2]) -> Result<[u8; 32], DirError> {
    let bytes = decode_multibase(did)?;
    let (prefix, key) = bytes.split_at(bytes.len().min(2));
    if prefix != codec {
        return Err(DirError::did(format!(
            "{did} is not a did:key with multicodec {:02x}{:02x}",
            codec[0], codec[1]
        )));
    }
    key.try_into()
        .map_err(|_| DirError::did(format!("{did} does not hold a 32-byte key")))
}

/// The Ed25519 identity key inside a `did:key`.
pub fn ed25519_key(did: &str) -> Result<[u8; 32], DirError> {
    decode_key(did, ED25519)
}

/// The X25519 invite key inside a `did:key`.
pub fn x25519_key(did: &str) -> Result<[u8; 32], DirError> {
    decode_key(did, X25519)
}

/// `did:key:z…` for a key with the given multicodec prefix.
pub fn encode_key(codec: [u8; 2], key: &[u8]) -> String {
    let mut bytes = codec.to_vec();
    bytes.extend_from_slice(key);
    format!("{DID_KEY_PREFIX}z{}", bs58::encode(bytes).into_string())
}

/// The multicodec-prefixed bytes of a `did:key` (multibase `z` only).
fn decode_multibase(did: &str) -> Result<Vec<u8>, DirError> {
    let multibase = did
        .strip_prefix(DID_KEY_PREFIX)
        .ok_or_else(|| DirError::did(format!("{did} is not a did:key")))?;
    let encoded = multibase
        .strip_prefix('z')
        .ok_or_else(|| DirError::did(format!("{did} is not multibase base58btc")))?;
    bs58::decode(encoded)
        .into_vec()
        .map_err(|e| DirError::did(format!("{did} is not valid base58btc: {e}")))
}

/// A wallet account on an EVM chain, as named by CAIP-10.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Decimal EIP-155 chain id.
    pub chain_id: String,
    /// `0x` + 40 hex digits, in the case it was given (EIP-55 or not).
    pub address: String,
}

impl Account {
    /// Parses `did:pkh:eip155:<chain>:<0x address>`.
    pub fn from_pkh(pkh: &str) -> Result<Account, DirError> {
        pkh.strip_prefix(DID_PKH_PREFIX)
            .and_then(|caip10| Account::from_caip10(caip10).ok())
            .ok_or_else(|| DirError::did(format!("{pkh} is not a did:pkh:eip155 account")))
    }

    /// Parses `eip155:<chain>:<0x address>`.
    pub fn from_caip10(account: &str) -> Result<Account, DirError> {
        let invalid = || DirError::did(format!("{account} is not an eip155 CAIP-10 account"));
        let mut parts = account.split(':');
        let (Some("eip155"), Some(chain_id), Some(address), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let chain_ok = !chain_id.is_empty()
            && chain_id.len() <= 32
            && chain_id.bytes().all(|b| b.is_ascii_digit());
        let hex = address.strip_prefix("0x").unwrap_or_default();
        let address_ok = hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if !chain_ok || !address_ok {
            return Err(invalid());
        }
        Ok(Account {
            chain_id: chain_id.to_string(),
            address: address.to_string(),
        })
    }

    /// `eip155:<chain>:<lowercase address>`: the form stored and compared,
    /// so that EIP-55 checksummed and lowercase spellings are one account.
    pub fn canonical(&self) -> String {
        format!(
            "eip155:{}:{}",
            self.chain_id,
            self.address.to_ascii_lowercase()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::test_vectors;

    #[test]
    fn did_key_vectors_decode_to_their_codec_and_key() {
        for v in test_vectors()["did_key"].as_array().unwrap() {
            let did = v["did"].as_str().unwrap();
            let codec: [u8; 2] = hex::decode(v["multicodec"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            let key = hex::decode(v["public_key_hex"].as_str().unwrap()).unwrap();
            assert_eq!(decode_multibase(did).unwrap()[2..], key[..], "{did}");
            match codec {
                ED25519 => {
                    assert_eq!(ed25519_key(did).unwrap()[..], key[..]);
                    assert!(x25519_key(did).is_err());
                    assert_eq!(encode_key(ED25519, &key), did);
                }
                X25519 => {
                    assert_eq!(x25519_key(did).unwrap()[..], key[..]);
                    assert!(ed25519_key(did).is_err());
                    assert_eq!(encode_key(X25519, &key), did);
                }
                _ => {
                    // secp256k1 (0xe701, 33 bytes): neither an identity nor an invite key.
                    assert!(ed25519_key(did).is_err());
                    assert!(x25519_key(did).is_err());
                }
            }
        }
    }

    #[test]
    fn synthetic_keys_decode() {
        let s = &test_vectors()["synthetic"];
        let identity = ed25519_key(s["identity_did_key"].as_str().unwrap()).unwrap();
        assert_eq!(
            hex::encode(identity),
            s["identity_pub_hex"].as_str().unwrap()
        );
        let invite = x25519_key(s["invite_did_key"].as_str().unwrap()).unwrap();
        assert_eq!(hex::encode(invite), s["invite_pub_hex"].as_str().unwrap());
    }

    #[test]
    fn non_multibase_did_keys_are_rejected() {
        let hex_did = "did:key:451cf9b97c64fcca05fbb0d4c40b886c94133653df5a2b6bd97bd29a0bbcdb37";
        assert_eq!(ed25519_key(hex_did).unwrap_err().name, "did");
        assert!(ed25519_key("z6MkhoV7JnKEFgwai4R1ui14xcPDnqVFZ3a9dUNM3fE3z3Nf").is_err());
        assert!(ed25519_key("did:key:z0OIl").is_err());
    }

    #[test]
    fn accounts_are_canonicalised_with_lowercase_addresses() {
        let a = Account::from_pkh("did:pkh:eip155:1:0xB1bad80be351061Db2F726D2dDe28E0Ebbb88D30")
            .unwrap();
        assert_eq!(
            a.canonical(),
            "eip155:1:0xb1bad80be351061db2f726d2dde28e0ebbb88d30"
        );
        assert_eq!(a.address, "0xB1bad80be351061Db2F726D2dDe28E0Ebbb88D30");
        for bad in [
            "did:pkh:eip155:1:0x1234",
            "did:pkh:solana:1:0xB1bad80be351061Db2F726D2dDe28E0Ebbb88D30",
            "did:pkh:eip155::0xB1bad80be351061Db2F726D2dDe28E0Ebbb88D30",
            "did:pkh:eip155:1:B1bad80be351061Db2F726D2dDe28E0Ebbb88D3000",
            "eip155:1:0xB1bad80be351061Db2F726D2dDe28E0Ebbb88D30",
            "did:pkh:eip155:1:0xB1bad80be351061Db2F726D2dDe28E0Ebbb88D30:x",
        ] {
            assert!(Account::from_pkh(bad).is_err(), "{bad}");
        }
    }
}
