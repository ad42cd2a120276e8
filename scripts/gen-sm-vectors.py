#!/usr/bin/env python3
"""Independent test vectors for the VSC personalization channel (docs/secure-messaging.md).

Implements, from the specification and with pycryptodome only, the per-card key derivation
(HKDF-SHA256 with the `vsc/v1/sm/k-enc` and `vsc/v1/sm/k-mac` labels) and ICAO Doc 9303 Part 11
secure messaging with AES (SSC, IV = E(K_enc, SSC), DO'87'/'85'/'97'/'99'/'8E', CMAC), then
prints one channel session as test vectors:

    /usr/bin/python3 scripts/gen-sm-vectors.py > shared/src/sm/vectors.txt

Needs pycryptodome: Debian's python3-pycryptodome (module `Cryptodome`, for the system
python3), or pip's pycryptodome (module `Crypto`).
"""

try:
    from Cryptodome.Cipher import AES
    from Cryptodome.Hash import CMAC, SHA256
    from Cryptodome.Protocol.KDF import HKDF
except ImportError:  # pip's pycryptodome
    from Crypto.Cipher import AES
    from Crypto.Hash import CMAC, SHA256
    from Crypto.Protocol.KDF import HKDF

BLOCK = 16


def derive_key(master, label, uid):
    """HKDF-SHA256, no salt (RFC 5869: HashLen zero bytes), info = label || UID, 32 bytes."""
    return HKDF(master, 32, bytes(32), SHA256, context=label.encode("ascii") + uid)


def pad(data):
    """ISO/IEC 9797-1 padding method 2."""
    data = data + b"\x80"
    return data + bytes(-len(data) % BLOCK)


def unpad(data):
    stripped = data.rstrip(b"\x00")
    assert stripped.endswith(b"\x80") and len(data) - len(stripped) < BLOCK
    return stripped[:-1]


def tlv(tag, value):
    """A data object with a one-byte tag and a BER length."""
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n <= 0xFF:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82]) + n.to_bytes(2, "big")
    return bytes([tag]) + length + value


def parse_command(apdu):
    """ISO 7816-3 cases: (header, data, le bytes or None, extended)."""
    header, body = apdu[:4], apdu[4:]
    if not body:
        return header, b"", None, False
    if len(body) == 1:
        return header, b"", body, False
    if body[0] == 0 and len(body) == 3:
        return header, b"", body[1:], True
    if body[0] == 0:
        nc = int.from_bytes(body[1:3], "big")
        data, rest = body[3:3 + nc], body[3 + nc:]
        return header, data, (rest or None), True
    nc = body[0]
    data, rest = body[1:1 + nc], body[1 + nc:]
    return header, data, (rest or None), False


class Channel:
    def __init__(self, k_enc, k_mac):
        self.k_enc, self.k_mac, self.ssc = k_enc, k_mac, 0
        self.trace = []

    def next_ssc(self):
        self.ssc += 1
        return self.ssc.to_bytes(BLOCK, "big")

    def encrypt(self, ssc, data):
        iv = AES.new(self.k_enc, AES.MODE_ECB).encrypt(ssc)
        self.trace.append(("iv", iv))
        self.trace.append(("padded data", pad(data)))
        return AES.new(self.k_enc, AES.MODE_CBC, iv).encrypt(pad(data))

    def decrypt(self, ssc, cryptogram):
        iv = AES.new(self.k_enc, AES.MODE_ECB).encrypt(ssc)
        return unpad(AES.new(self.k_enc, AES.MODE_CBC, iv).decrypt(cryptogram))

    def mac(self, ssc, message):
        n = pad(ssc + message)
        self.trace.append(("mac input", n))
        return CMAC.new(self.k_mac, n, ciphermod=AES).digest()[:8]

    def protect_command(self, plain):
        self.trace = []
        header, data, le, extended = parse_command(plain)
        cla = header[0] | 0x0C
        header = bytes([cla]) + header[1:]
        ssc = self.next_ssc()
        self.trace.append(("ssc", ssc))
        objects = b""
        if data:
            cryptogram = self.encrypt(ssc, data)
            self.trace.append(("cryptogram", cryptogram))
            if header[1] & 1:
                objects += tlv(0x85, cryptogram)
            else:
                objects += tlv(0x87, b"\x01" + cryptogram)
        if le is not None:
            objects += tlv(0x97, le)
        mac = self.mac(ssc, pad(header) + objects)
        self.trace.append(("mac", mac))
        body = objects + tlv(0x8E, mac)
        if extended or len(body) > 0xFF:
            return header + b"\x00" + len(body).to_bytes(2, "big") + body + b"\x00\x00"
        return header + bytes([len(body)]) + body + b"\x00"

    def protect_response(self, data, sw):
        self.trace = []
        ssc = self.next_ssc()
        self.trace.append(("ssc", ssc))
        objects = b""
        if data:
            objects += tlv(0x87, b"\x01" + self.encrypt(ssc, data))
        objects += tlv(0x99, sw)
        mac = self.mac(ssc, objects)
        self.trace.append(("mac", mac))
        return objects + tlv(0x8E, mac) + sw


def main():
    master = bytes(range(32))
    uid = bytes.fromhex("0102030405060708")
    k_enc = derive_key(master, "vsc/v1/sm/k-enc", uid)
    k_mac = derive_key(master, "vsc/v1/sm/k-mac", uid)
    channel = Channel(k_enc, k_mac)

    private_data = bytes(range(64))
    long_data = bytes(i % 251 for i in range(300))
    steps = [
        ("SELECT DF.PRIVATE", "00A4000C026000", b"", "9000"),
        ("UPDATE BINARY, 64 bytes", "00D6000040" + private_data.hex(), b"", "9000"),
        ("READ BINARY, Le 10", "00B0000010", bytes(range(0xA0, 0xB0)), "9000"),
        ("PUT DATA, odd INS", "00DB3FFF065C017E530100", b"", "9000"),
        ("VERIFY, wrong PIN", "002000010831323334FFFFFFFF", b"", "63C2"),
        ("UPDATE BINARY, extended", "00D6004000012C" + long_data.hex(), b"", "9000"),
        ("READ BINARY, extended Le 0200", "00B00000000200", long_data, "9000"),
        ("SELECT of a missing file", "00A4000C02FFFF", b"", "6A82"),
        ("GET CHALLENGE, Le 00", "0084000000", bytes(range(0xC0, 0xC8)), "9000"),
        ("ACTIVATE FILE", "00440000", b"", "9000"),
    ]

    print("# Test vectors for the personalization channel (docs/secure-messaging.md).")
    print("# Generated by scripts/gen-sm-vectors.py with pycryptodome; do not edit by hand.")
    print("# One channel: the SSC runs on from step to step.")
    print(f"master {master.hex().upper()}")
    print(f"uid {uid.hex().upper()}")
    print(f"k-enc {k_enc.hex().upper()}")
    print(f"k-mac {k_mac.hex().upper()}")
    for name, command_hex, response_data, sw_hex in steps:
        command = bytes.fromhex(command_hex)
        sw = bytes.fromhex(sw_hex)
        protected = channel.protect_command(command)
        command_trace = channel.trace
        protected_response = channel.protect_response(response_data, sw)
        response_trace = channel.trace
        print()
        print(f"step {name}")
        for label, value in command_trace:
            print(f"#   command {label}: {value.hex().upper()}")
        print(f"command {command.hex().upper()}")
        print(f"protected-command {protected.hex().upper()}")
        for label, value in response_trace:
            print(f"#   response {label}: {value.hex().upper()}")
        print(f"response {(response_data + sw).hex().upper()}")
        print(f"protected-response {protected_response.hex().upper()}")


if __name__ == "__main__":
    main()
