"""SIPp scenarios rendered per test: callers that press menu digits and hang up when told, agents that
answer after a ring or never answer."""

from __future__ import annotations

from pathlib import Path

DTMF_PCAP = "/usr/share/sip-tester/dtmf_2833_{digit}.pcap"  # RFC 4733 events, payload type 101
# Each capture carries fixed RTP sequence numbers and timestamps, replayed as they are. Asterisk drops an
# event whose sequence number is not newer than the last one it saw on the call, so within one call the
# digits must follow this order (each at most once): a repeated or earlier digit is silently lost.
DTMF_ORDER = "123456789*#0"

_INVITE_SDP = """      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
{video}"""

_VIDEO = """      m=video [media_port+2] RTP/AVP 99
      a=rtpmap:99 H264/90000
      a=fmtp:99 packetization-mode=1
"""


def _pcap_name(digit: str) -> str:
    return {"*": "star", "#": "pound"}.get(digit, digit)


def caller(path: Path, *, digits: str = "", first_digit_after_ms: int = 1000, hangup_after_ms: int = 8000,
           video: bool = True, name: str = "Citizen", number: str = "13904310000",
           presses: tuple[tuple[int, str], ...] = (), far_end_hangup: bool | None = None) -> Path:
    """A caller who presses `digits` (RFC 4733) and hangs up `hangup_after_ms` after the answer.

    `presses` instead gives each digit its own time (ms after the answer), to hit a given prompt.
    far_end_hangup: None accepts either side hanging up first; True requires our BYE before
    `hangup_after_ms` (the scenario fails otherwise); False requires the caller to be the one who hangs up
    (a BYE from us is then an unexpected message, and SIPp fails)."""
    pressed = [*digits, *(d for _, d in sorted(presses))]
    ranks = [DTMF_ORDER.index(d) for d in pressed]
    if ranks != sorted(set(ranks)):
        raise ValueError(f"digits {''.join(pressed)!r}: Asterisk would drop some (order {DTMF_ORDER!r}, no repeats)")
    steps = []
    waited = 0
    if digits:
        steps.append(f'  <pause milliseconds="{first_digit_after_ms}"/>')
        waited += first_digit_after_ms
        for d in digits:
            steps.append(f'  <nop><action><exec play_pcap_audio="{DTMF_PCAP.format(digit=_pcap_name(d))}"/></action></nop>')
            steps.append('  <pause milliseconds="400"/>')
            waited += 400
    for at_ms, d in sorted(presses):
        if at_ms > waited:
            steps.append(f'  <pause milliseconds="{at_ms - waited}"/>')
            waited = at_ms
        steps.append(f'  <nop><action><exec play_pcap_audio="{DTMF_PCAP.format(digit=_pcap_name(d))}"/></action></nop>')
    rest = max(hangup_after_ms - waited, 0)
    if far_end_hangup is None:
        wait_bye = f'  <recv request="BYE" next="farbye" timeout="{max(rest, 1)}" ontimeout="hangup"/>'
    elif far_end_hangup:
        wait_bye = f'  <recv request="BYE" next="farbye" timeout="{max(rest, 1)}"/>'
    else:
        wait_bye = f'  <pause milliseconds="{max(rest, 1)}"/>'
    xml = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="hotline caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{name}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:citizen@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

{_INVITE_SDP.format(video=_VIDEO if video else '')}
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{name}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:citizen@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
{chr(10).join(steps)}
{wait_bye}
  <label id="hangup"/>
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{name}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:citizen@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" next="end"/>
  <label id="farbye"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <label id="end"/>
</scenario>
"""
    path.write_text(xml)
    return path


def agent(path: Path, *, calls: int = 1, answer_after_ms: int = 500, answer: bool = True,
          hangup_after_ms: int | None = None) -> Path:
    """A registered agent phone: rings, answers after `answer_after_ms` (or never: then it expects the
    CANCEL), and waits for the far end's BYE. Run with -aa so Asterisk's OPTIONS are answered.

    hangup_after_ms: the agent ends the conversation this long after the answer (sends BYE), unless the
    far end hangs up first."""
    if answer and hangup_after_ms is not None:
        ending = f"""  <recv request="BYE" next="farbye" timeout="{hangup_after_ms}" ontimeout="agentbye"/>
  <label id="agentbye"/>
  <send retrans="500">
    <![CDATA[
      BYE [$contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$me];tag=[pid]SIPpTag01[call_number]
      To: [$them]
      [last_Call-ID:]
      CSeq: 1 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" next="done"/>
  <label id="farbye"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <label id="done"/>
"""
    else:
        ending = """  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"""
    # What the agent's own BYE needs from the INVITE (SIPp refuses variables it never uses: only then).
    learn = """
    <action>
      <ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" assign_to="contact"/>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="them"/>
      <ereg regexp="^[^;]*" search_in="hdr" header="To:" assign_to="me"/>
    </action>
  """ if answer and hangup_after_ms is not None else ""
    if answer:
        body = f"""  <recv request="INVITE">{learn}</recv>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:agent@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="{answer_after_ms}"/>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:agent@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
      m=video [media_port+2] RTP/AVP 99
      a=rtpmap:99 H264/90000
      a=fmtp:99 packetization-mode=1

    ]]>
  </send>
  <recv request="ACK"/>
{ending}"""
    else:
        body = """  <recv request="INVITE">
    <action><ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="cs"/></action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:agent@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <recv request="CANCEL"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [$cs] INVITE
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
"""
    path.write_text(f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="agent phone">
{body}</scenario>
""")
    return path
