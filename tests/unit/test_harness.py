"""The test harness against the real thing: a Mosquitto broker, paho clients and Apprise."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import apprise
import harness.mosquitto as mosquitto_module
import paho.mqtt.client as mqtt
import pytest
from harness.chat import ChatReceiver, chat_receiver_fixture  # noqa: F401
from harness.mosquitto import Message, Mosquitto, Subscriber, mosquitto_fixture  # noqa: F401
from harness.ports import accepts_connections, free_port
from paho.mqtt.enums import CallbackAPIVersion


def has(topic: str, payload: bytes) -> Callable[[list[Message]], bool]:
    """A ``wait_for`` predicate: some message on ``topic`` carries ``payload``."""

    def check(messages: list[Message]) -> bool:
        return any(m.topic == topic and m.payload == payload for m in messages)

    return check


# -- broker lifecycle ---------------------------------------------------------------------------


def test_broker_listens_on_loopback_and_stops(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    with broker:
        assert broker.running
        assert broker.host == "127.0.0.1"
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        assert accepts_connections(broker.host, broker.port)
        config = broker.config_path.read_text()
        assert f"listener {broker.port} 127.0.0.1" in config
        assert "allow_anonymous true" in config
        assert "persistence true" in config
    assert broker.pid is None
    assert not accepts_connections(broker.host, broker.port)
    assert "terminating" in broker.log_text()


def test_restart_keeps_the_port(mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    mosquitto.restart(kill=True)
    assert mosquitto.port == port
    assert accepts_connections(mosquitto.host, port)
    mosquitto.restart()
    assert mosquitto.port == port
    mosquitto.wait_ready(timeout=1)


def test_start_retries_when_the_picked_port_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        monkeypatch.setattr(
            mosquitto_module, "free_port", lambda host: next(ports, None) or free_port(host)
        )
        with Mosquitto(tmp_path) as broker:
            assert broker.port != taken
            assert accepts_connections(broker.host, broker.port)
        assert "Address already in use" in broker.log_text()


def test_a_pinned_port_that_stays_taken_fails_clearly(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        broker = Mosquitto(tmp_path, port=squatter.getsockname()[1])
        with pytest.raises(RuntimeError, match="could not bind"):
            broker.start()
        assert not broker.running


def test_missing_binary_points_at_the_install_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr(mosquitto_module, "BROKER_FALLBACK", tmp_path / "no-mosquitto")
    with pytest.raises(RuntimeError, match=r"scripts/ensure-system-packages\.sh"):
        Mosquitto(tmp_path).start()


# -- messages -----------------------------------------------------------------------------------


def test_qos1_publish_reaches_the_subscriber(mosquitto: Mosquitto) -> None:
    with mosquitto.subscriber("condor/#") as sub:
        mosquitto.publish("condor/alerts/SpxLow", b'{"state": "firing"}', qos=1)
        mosquitto.publish("elsewhere/x", b"ignored", qos=1)
        received = sub.wait_for(has("condor/alerts/SpxLow", b'{"state": "firing"}'), timeout=5)
    (message,) = received
    assert message.qos == 1
    assert not message.retain
    assert message.json() == {"state": "firing"}
    assert sub.messages("condor/alerts/+") == [message]
    assert sub.messages("other/#") == []


def test_subscriber_reconnects_after_the_broker_is_killed_and_restarted(
    mosquitto: Mosquitto,
) -> None:
    with mosquitto.subscriber("condor/#") as sub:
        port = mosquitto.port
        count = sub.subscribed_count
        mosquitto.kill()
        assert not accepts_connections(mosquitto.host, port)
        mosquitto.start()
        assert mosquitto.port == port
        sub.wait_subscribed(count + 1, timeout=10)
        assert sub.connected
        mosquitto.publish("condor/after-restart", b"back")
        sub.wait_for(has("condor/after-restart", b"back"), timeout=5)


def test_retained_message_reaches_a_late_subscriber(mosquitto: Mosquitto) -> None:
    mosquitto.publish("condor/status", b"online", retain=True)
    with mosquitto.subscriber("condor/status") as late:
        (message,) = late.wait_for(has("condor/status", b"online"), timeout=5)
    assert message.retain


def test_persistent_session_gets_messages_queued_while_it_was_away(mosquitto: Mosquitto) -> None:
    client_id = "harness-persistent"
    with mosquitto.subscriber("condor/#", client_id=client_id):
        pass
    mosquitto.publish("condor/queued", b"while away", qos=1)
    mosquitto.restart()
    with mosquitto.subscriber("condor/#", client_id=client_id) as back:
        back.wait_for(has("condor/queued", b"while away"), timeout=5)
        assert back.session_present


def test_save_makes_queued_messages_survive_a_kill(tmp_path: Path) -> None:
    client_id = "harness-survivor"
    with Mosquitto(tmp_path, autosave_interval=0) as broker:
        with broker.subscriber("condor/#", client_id=client_id):
            pass
        broker.publish("condor/saved", b"kept", qos=1)
        broker.save()
        broker.publish("condor/unsaved", b"lost", qos=1)
        broker.restart(kill=True)
        with broker.subscriber("condor/#", client_id=client_id) as back:
            back.wait_for(has("condor/saved", b"kept"), timeout=5)
            time.sleep(0.3)
            assert back.messages("condor/unsaved") == []


def test_last_will_fires_as_soon_as_a_client_drops(mosquitto: Mosquitto) -> None:
    with mosquitto.subscriber("condor/status/#") as sub:
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id="harness-will"
        )
        client.will_set("condor/status/monitor", b"offline", qos=1)
        client.connect(mosquitto.host, mosquitto.port, keepalive=60)
        deadline = time.monotonic() + 5
        while not client.is_connected() and time.monotonic() < deadline:
            client.loop(timeout=0.1)
        assert client.is_connected()
        sock = client.socket()
        assert isinstance(sock, socket.socket)
        dropped = time.monotonic()
        sock.close()
        (will,) = sub.wait_for(has("condor/status/monitor", b"offline"), timeout=5)
    # The broker sees the TCP close at once; the keepalive only matters for silent peers.
    assert will.received_at - dropped < 2


def test_password_mode_refuses_anonymous_clients(tmp_path: Path) -> None:
    with Mosquitto(tmp_path).with_password("monitor", "s3cret") as broker:
        assert "allow_anonymous false" in broker.config_path.read_text()
        with pytest.raises(ConnectionRefusedError):
            mosquitto_module.publish(broker.host, broker.port, "condor/x", b"anonymous")
        with broker.subscriber("condor/#") as sub:
            broker.publish("condor/x", b"authenticated")
            sub.wait_for(has("condor/x", b"authenticated"), timeout=5)


def test_subscriber_stop_joins_its_network_thread(mosquitto: Mosquitto) -> None:
    before = set(threading.enumerate())
    sub = Subscriber(mosquitto.host, mosquitto.port, "condor/#").start()
    assert sub.connected
    sub.stop()
    assert set(threading.enumerate()) <= before


# -- chat receiver ------------------------------------------------------------------------------


def test_chat_receiver_records_apprise_posts(chat_receiver: ChatReceiver) -> None:
    notifier = apprise.Apprise()
    assert notifier.add(f"json://127.0.0.1:{chat_receiver.port}/hook")
    assert notifier.notify(title="SpxLow firing", body="SPX 6,650.00")
    (request,) = chat_receiver.wait_for(lambda received: len(received) == 1, timeout=5)
    assert request.method == "POST"
    assert request.path == "/hook"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.body["title"] == "SpxLow firing"
    assert request.body["message"] == "SPX 6,650.00"
    assert request.body["type"] == "info"
    assert "version" in request.body
    assert chat_receiver.rejected == 0


def test_chat_receiver_rejects_while_failing(chat_receiver: ChatReceiver) -> None:
    notifier = apprise.Apprise()
    notifier.add(chat_receiver.apprise_url("/hook"))
    chat_receiver.fail()
    assert not notifier.notify(title="t", body="first")
    assert not notifier.notify(title="t", body="second")
    assert chat_receiver.rejected == 2
    assert chat_receiver.received == []
    assert [r.status for r in chat_receiver.rejected_requests] == [500, 500]
    chat_receiver.recover()
    assert notifier.notify(title="t", body="third")
    assert [r.body["message"] for r in chat_receiver.received] == ["third"]


def test_chat_receiver_fail_next_then_recovers(chat_receiver: ChatReceiver) -> None:
    notifier = apprise.Apprise()
    notifier.add(chat_receiver.apprise_url())
    chat_receiver.fail_next(2, status=503)
    results = [bool(notifier.notify(title="t", body=str(i))) for i in range(3)]
    assert results == [False, False, True]
    assert chat_receiver.rejected == 2
    assert [r.message for r in chat_receiver.received] == ["2"]
    received_times = [r.received_at for r in chat_receiver.rejected_requests]
    assert received_times == sorted(received_times)


def test_chat_receiver_records_plain_text_and_stops_cleanly() -> None:
    before = set(threading.enumerate())
    with ChatReceiver() as receiver:
        port = receiver.port
        assert receiver.url == f"http://127.0.0.1:{port}"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(
                b"POST /any/path HTTP/1.0\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 5\r\n\r\nhello"
            )
            reply = conn.makefile("rb").read()
        assert reply.startswith(b"HTTP/1.0 200")
        (request,) = receiver.wait_for(lambda received: len(received) == 1, timeout=5)
        assert request.path == "/any/path"
        assert request.body == "hello"
    assert not accepts_connections("127.0.0.1", port)
    assert set(threading.enumerate()) <= before
