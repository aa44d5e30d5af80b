"""``serve()``'s number auto-configuration for Telnyx (:meth:`TelnyxCarrier.configure_number`): best
effort, and it always says in the log what it changed or what to do by hand.

Telnyx routes a number's calls to a Call Control application (``connection_id``) and the application's
``webhook_event_url`` decides where the webhooks go (telnyx.md §2). So on ``serve()`` we point the
application at our voice webhook and attach the number to it when it is not yet.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from getpatter.carriers.telnyx.rest import TelnyxRestClient

log = logging.getLogger("getpatter")


async def point_number_at(
    client: TelnyxRestClient, phone_number: str, connection_id: str, webhook_url: str
) -> bool:
    """Returns True when the number and its application now point at ``webhook_url``; False (with a
    warning naming the manual fix) otherwise. Never raises: a server that cannot configure its number
    still answers calls."""
    manual = (
        f"in the Telnyx portal, attach {phone_number} to Call Control application {connection_id} and set "
        f"its webhook URL to {webhook_url}"
    )
    try:
        number = await client.find_number(phone_number)
        if number is None:
            log.warning(
                "%s is not a number of this Telnyx account; nothing changed (%s)", phone_number, manual
            )
            return False
        await client.set_webhook_url(connection_id, webhook_url)
        log.info("Telnyx application %s: webhook URL set to %s", connection_id, webhook_url)
        if str(number.get("connection_id") or "") != connection_id:
            await client.assign_number(str(number["id"]), connection_id)
            log.info("Telnyx number %s: attached to application %s", phone_number, connection_id)
        else:
            log.info("Telnyx number %s: already on application %s", phone_number, connection_id)
        return True
    except Exception as exc:
        log.warning("could not configure Telnyx number %s (%s); %s", phone_number, exc, manual)
        return False
