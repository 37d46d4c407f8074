from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from cartback.channels import ChannelPool, OutboxChannel, OutgoingEmail


def email(n: int) -> OutgoingEmail:
    return OutgoingEmail(
        message_id=f"m{n}",
        from_address="shop@acme.test",
        from_name="Acme",
        to_address=f"s{n}@example.com",
        to_name=None,
        subject=f"Hello {n}",
        text="hi",
        html="<p>hi</p>",
    )


def test_the_pool_sends_every_email_on_at_most_size_channels() -> None:
    made: list[OutboxChannel] = []

    def factory() -> OutboxChannel:
        channel = OutboxChannel()
        made.append(channel)
        return channel

    pool = ChannelPool(factory, size=3)
    with ThreadPoolExecutor(8) as executor:
        results = list(executor.map(lambda n: pool.send(email(n)), range(200)))

    assert 1 <= len(made) <= 3
    captured = sorted(m.message_id for channel in made for m in channel.list())
    assert captured == sorted(f"m{n}" for n in range(200))
    assert {r.provider for r in results} == {"outbox"}
    pool.close()
