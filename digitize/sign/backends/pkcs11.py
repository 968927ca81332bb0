"""``pkcs11``: a USB token (the tokens Vietnamese CAs issue) through its PKCS#11 module.

One login per ``open``: the session stays open and serves every signature until ``close``,
so one PIN entry covers a whole dossier (components and manifest). A refused PIN is
``BadPinError`` and is never retried here or by the retry policy (tokens lock after a few
wrong PINs). A token that is absent or unplugged is ``SignerUnavailableError`` (retry later).
PKCS#11 calls have no timeout of their own: the module blocks as long as the token does.
"""

from __future__ import annotations

from pathlib import Path

from digitize.errors import BadPinError, SignerConfigError, SignerUnavailableError
from digitize.sign.backends import KeyMaterial, OpenContext, SignerBackend
from digitize.sign.secrets import read_secret


class Pkcs11Backend(SignerBackend):
    name = "pkcs11"

    async def open(self, ctx: OpenContext) -> KeyMaterial:
        import pkcs11.exceptions as p11e
        from pyhanko.config.pkcs11 import TokenCriteria
        from pyhanko.sign import pkcs11 as p11

        options = ctx.settings.pkcs11
        module = options.module
        key_label = options.key_label or options.cert_label
        cert_label = options.cert_label or options.key_label
        if not module or not key_label:
            raise SignerConfigError("backend pkcs11 needs sign.pkcs11.module and key_label")
        if not Path(module).is_file():
            raise SignerConfigError("PKCS#11 module not found", path=module)
        pin = read_secret(options.pin_env, "token PIN")
        criteria = TokenCriteria(label=options.token_label) if options.token_label else None
        absent = (p11e.TokenNotPresent, p11e.TokenNotRecognised, p11e.DeviceRemoved,
                  p11e.DeviceError, p11e.SlotIDInvalid)  # fmt: skip
        try:
            session = p11.open_pkcs11_session(module, token_criteria=criteria, user_pin=pin)
        except (p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange) as e:
            raise BadPinError(
                f"the token refused the PIN ({type(e).__name__})",
                path=module,
                hint=f"check {options.pin_env}; tokens lock after a few wrong PINs",
            ) from None
        except p11e.PinLocked:
            raise BadPinError("the token PIN is locked", path=module) from None
        except absent as e:
            raise SignerUnavailableError(
                f"the token is not present ({type(e).__name__})", path=module,
                hint="plug the USB token in",
            ) from None  # fmt: skip
        except p11e.PKCS11Error as e:
            if "No token" in str(e):  # pyHanko: no slot holds a token matching the label
                raise SignerUnavailableError(
                    f"no token {options.token_label or ''} found".replace("  ", " "),
                    path=module,
                    hint="plug the USB token in (or check sign.pkcs11.token_label)",
                ) from None
            raise SignerConfigError(
                f"cannot open the token: {type(e).__name__}", path=module
            ) from None
        except Exception as e:  # noqa: BLE001 - a module that cannot be loaded and friends
            raise SignerConfigError(f"cannot open the token: {e}", path=module) from None
        finally:
            pin = None  # noqa: F841 - drop the reference early
        signer = p11.PKCS11Signer(
            session,
            key_label=key_label,
            cert_label=cert_label,
            other_certs_to_pull=None,  # the CA chain stored on the token, like CA-issued tokens
            prefer_pss=ctx.prefer_pss,
        )
        try:
            await signer.ensure_objects_loaded()
        except Exception as e:  # noqa: BLE001
            session.close()
            raise SignerConfigError(
                f"key/certificate '{key_label}' not found on the token ({type(e).__name__})",
                path=module,
            ) from None
        cert = signer.signing_cert
        chain = [c for c in signer.cert_registry if c.dump() != cert.dump()]
        return KeyMaterial(signer, cert, chain, [session.close])
