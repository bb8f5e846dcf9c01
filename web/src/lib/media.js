// Camera and microphone: open them, and say in plain words why they could not be opened.
import { t } from './i18n.js';

export async function openMedia() {
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    const e = new Error('insecure');
    e.name = 'InsecureContext';
    throw e;
  }
  return navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true },
    video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' },
  });
}

/** A sentence for the user about a getUserMedia failure. */
export function explainMedia(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
      return t('err_camera_denied');
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return t('err_no_device');
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return t('err_device_busy');
    case 'InsecureContext':
    case 'SecurityError':
      return t('err_insecure');
    default:
      return t('err_media', { detail: (err && (err.name || err.message)) || '?' });
  }
}

export function stopMedia(stream) {
  if (stream) for (const track of stream.getTracks()) track.stop();
}
