import FedRouteNumerics
import Foundation

/// The JSON form of federation messages and checkpoints: tensors and matrices as base64 float32
/// (`CodingUserInfoKey.packedFloats`), non-finite numbers as strings.
public enum FederationCoding {
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.userInfo[.packedFloats] = true
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }
}
