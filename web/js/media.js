// Opening the local camera, microphone and screen.

/**
 * @typedef {object} LocalMedia
 * @property {MediaStream | null} stream whatever we got; null when we got nothing
 * @property {string | null} problem why something is missing, for the user
 */

// 960x540 gives three simulcast layers (240, 480 and 960 wide; browsers send fewer layers for
// smaller cameras) at a cost a laptop carries; a viewer's big tile still looks sharp.
const VIDEO = { width: { ideal: 960 }, height: { ideal: 540 } };

/**
 * Opens the microphone and the camera. A missing or busy device does not keep anyone out of
 * the session: we fall back to whichever one works, then to joining without media. A refusal
 * by the user is respected at once (asking again would only show the prompt again).
 * @returns {Promise<LocalMedia>}
 */
export async function openLocalMedia() {
  if (!navigator.mediaDevices?.getUserMedia) {
    return { stream: null, problem: 'This page cannot use a camera or microphone (it needs https or localhost).' };
  }
  /** @type {MediaStreamConstraints[]} */
  const attempts = [
    { audio: true, video: VIDEO },
    { audio: true, video: false },
    { audio: false, video: VIDEO },
  ];
  /** @type {unknown} */
  let firstError = null;
  for (const [index, constraints] of attempts.entries()) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      const problem = index === 0 ? null : `Only part of your devices could be opened: ${describe(firstError)}`;
      return { stream, problem };
    } catch (error) {
      firstError ??= error;
      if (error instanceof DOMException && (error.name === 'NotAllowedError' || error.name === 'SecurityError')) break;
    }
  }
  return { stream: null, problem: `Joining without camera and microphone: ${describe(firstError)}` };
}

/**
 * @param {unknown} error
 * @returns {string}
 */
function describe(error) {
  if (error instanceof DOMException) {
    switch (error.name) {
      case 'NotAllowedError':
        return 'access was refused.';
      case 'NotFoundError':
        return 'no such device was found.';
      case 'NotReadableError':
        return 'the device is in use by another program.';
      default:
        return error.message || error.name;
    }
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * Asks the user for a screen, window or tab to share.
 * @returns {Promise<MediaStreamTrack>} the video track of the capture
 */
export async function openScreen() {
  if (!navigator.mediaDevices?.getDisplayMedia) {
    throw new Error('This browser cannot share the screen.');
  }
  const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  const [track] = stream.getVideoTracks();
  if (!track) throw new Error('The screen capture has no video.');
  return track;
}

/**
 * Why a screen share could not start, for the user; null when they just cancelled the picker.
 * @param {unknown} error
 * @returns {string | null}
 */
export function screenProblem(error) {
  if (error instanceof DOMException && error.name === 'NotAllowedError') return null;
  return `Could not share the screen: ${describe(error)}`;
}
