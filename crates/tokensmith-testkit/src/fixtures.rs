//! The vendors' documented requests and responses, verbatim from their
//! pages, for tests of parsers and adapters.
//!
//! ```
//! use tokensmith_testkit::fixtures;
//!
//! let body: serde_json::Value = serde_json::from_str(fixtures::SOTI_TOKEN_RESPONSE).unwrap();
//! assert_eq!(body["token_type"], "bearer");
//! // configapi's documented body is not strict JSON (trailing comma):
//! assert!(serde_json::from_str::<serde_json::Value>(fixtures::CONFIGAPI_TOKEN_RESPONSE).is_err());
//! ```

/// SOTI Connect's `Authorization` header for `Application1` /
/// `Application1Password`, as its page shows it.
pub const SOTI_AUTHORIZATION_HEADER: &str = "Basic QXBwbGljYXRpb24xOkFwcGxpY2F0aW9uMVBhc3N3b3Jk";

/// SOTI Connect's documented `password` grant body.
pub const SOTI_PASSWORD_REQUEST_BODY: &str =
    "grant_type=password&username=Administrator&password=1";

/// SOTI Connect's documented token response (lowercase `bearer`, integer
/// `expires_in`; the spaces inside the token are the page's line wrapping).
pub const SOTI_TOKEN_RESPONSE: &str = r#"{"access_token":"AAEAAK0OiDDPciqCR5sZ6Nu6c8wIvURVwCTxslETUGp xDfmf6uzkXAg9MKzfJqm4k9ADBYIaOsT20wllKWQgQvH5sYkaIWxtOZ9OntAkxwPn wBRO7rNqCGj9yfg-COpYCdr2GEMl5SzaAPx2_WBQ3SwhKuGWuuDxVMzRWdAW1r36J Y6N9Fp-rYK3CtoNs4ibqswOs7qSPzuwo_K9l9_c5oCz7d6qJxJdhKoh3MC8vqFXxJ SXIEAwXnL7KWtrhanIcj_m0abZWfvR7e5npIHDcHH-bfVmc6wp-SsKJ-FyG7_zg2F d8HjvoqivTqRO5i1RSpaPpOa318g2FMIw-Lh6I5K0FAOUAQAAAAEAABW2-Dr_0-vr bZGMubz8ZGqpo6Z67n3JqBIFPgMOPotNHVJSUc_2HbozYt7smfuCIeIvE0gd84ti3 LBJXSkiOBPJmxp-WhdC1IbB7y2W5G8D4l5MD3VbDTz6ov_VnZGpRc-h7Q9Knn1Vyk QTHo4NknDUdVkqDe3VHQsjtn12QINEzb04Ch-RpudIHnKG-P-jhIIszo2M0_Po8_U aHVwrpPtwhUCzqOU_Gus1nS694dP-8rXqjtbLxh_5GB1iQQBitMd-VgD8XzQrLqqH a6HcK1C41ZyA1Ot2_47vOKNrf_Mg6Ig8quYMpUypOdwFl9_Nb815TN-eSuDwQsSKn SnHDvTH8bSz9O0vHoiPexh2Weuf2N0KGZUlpC0OLy3oRb0d_aBOUdpnoIJ59Gc95H 7yTAnNPRuBnX0wDnvTFNkuN7ezKzfP2rNmfKPeoj0Xyf2FhGiSHgBJUuNpWwGJkz5 0tVX5nPl42Ow2ua9pLZqPg-GJQnmXwukVgV6w4dDoRsFVYbrRSdp-quU4pyNfj987 GWM","token_type":"bearer","expires_in":3600}"#;

/// configapi's documented request body.
pub const CONFIGAPI_REQUEST_BODY: &str = "grant_type=client_credentials&client_id=clientid&client_secret=qkDwDJlDfig2IpeuUZYKH1Wb8q1V0ju6sILxQQqhJ&scope=example.com";

/// configapi's documented token response: string `expires_in` and a
/// trailing comma after the last member.
pub const CONFIGAPI_TOKEN_RESPONSE: &str = r#"{
"access_token":"eyJhbGciOiJSUzI1NiI5q9Jgt...6HznsvPWy7UP3MINA",
"token_type":"Bearer",
"expires_in":"3599",
}"#;

/// The scoped OAuth 2.0 server's documented token response (the schema example).
pub const OAUTH2_TOKEN_RESPONSE: &str = r#"{
  "access_token": "string",
  "expires_in": 0,
  "scope": "string",
  "token_type": "bearer"
}"#;

/// The scoped OAuth 2.0 server's documented error body (the schema example,
/// the same for 400 and 403).
pub const OAUTH2_ERROR_RESPONSE: &str = r#"{
  "meta": {
    "pagination": {
      "limit": 0,
      "offset": 0,
      "total_count": 0
    }
  },
  "errors": [
    {
      "httpcode": 0,
      "message": "string"
    }
  ]
}"#;

/// Deyel's documented token response: a JWT access token (issuer `Deyel`),
/// `expires_in` 86400. The page lost the `:` after `"access_token"` when it
/// was scraped; it is restored here.
pub const DEYEL_TOKEN_RESPONSE: &str = concat!(
    "{\n    \"access_token\": \"",
    "eyJraWQiOiJrMSIsImFsZyI6IlJTMjU2In0.eyJpc3MiOiJEZXllbCIsImV4cCI6MTY1NDI2MTQ5MCwiY2RPcmdVbml0IjoiMDAwMDAwMDAwMSIsImdyYW50X3R5cGUiOiJjbGllbnRfY3JlZGVudGlhbHMiLCJwZXJtaXNzaW9ucyI6IntcImR0VmFsaWRpdHlcIjpcIkp1biAyLCAyMDIyLCAxMDowNDo1MCBBTVwiLFwibHNQZXJtaXNzaW9uc1wiOlt7XCJpZEFwcGxpY2F0aW9uXCI6XCJERVlFTFwiLFwiY2RQZXJtaXNzaW9uXCI6XCJVU1VBUklPRklOQUxcIn1dfSIsImNvbXBhbnkiOiJDU1QiLCJudVNlY0hpZGRlbiI6IjIwMjIwNjAyMTAwNDUwLjg2NjAuODA1Mjc1NzQ3NDc1NzUxOSIsImlkRGF0YUJhc2VTZXNzaW9uIjoiREVZRUxCT1QqMjAyMjA2MDIxMDA0NTAuODY2MC44MDUyNzU3NDc0NzU3NTE5IiwianRpIjoieDN1UnhXM09xbVZvMlBWdmsxWGZmdyIsImlhdCI6MTY1NDE3NTA5MCwic3ViIjoiREVZRUxCT1QifQ.M8EHKFhMwJQsdJbg4VQkPcvlJxoRyG-XO6h4eVWyMtkyvcCxN658hCqg8luu2yM5rEVMpUqOhNWKAoJdcvOvCMpAi21oYttkVlQxSdENUVNu4fmhDavQshstzvqGrY3qu9gaxdCfcLjwf62bEf9227TpvDGbZyFP8jYLbA81gwo1y6Q2NOaIE_yrChMB4LRm-bhEx5epdL1lMsE3JuwjMQ0tN2j-EehA1dDPB3AY8461wTGOPULF66B81iGmnOvexvoeS0vZQU3cMXwpxy-yQ8ulJRIdj-BprxmkFWkc3_MyD7SgkyqQwVSjiXDgfbJoFkCTPYHprZVDE362yBYW",
    "\",\n    \"token_type\": \"Bearer\",\n    \"expires_in\": 86400\n}"
);

/// Deyel's documented error body (note the capitalised `Invalid_request`).
pub const DEYEL_ERROR_RESPONSE: &str =
    "{\n    \"error_description\": \"Invalid client_id\",\n    \"error\": \"Invalid_request\"\n}";
