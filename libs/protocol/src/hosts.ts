/**
 * 127.0.0.0/8, ::1 and `localhost` (a trailing dot allowed): addresses only this machine can
 * reach. The coordinator refuses to listen elsewhere without API keys, and a participant refuses
 * to start elsewhere without verifying signatures.
 */
export function isLoopbackHost(host: string): boolean {
  const normalised = host.trim().toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  return normalised === 'localhost' || normalised === '::1' || /^127(\.\d{1,3}){3}$/.test(normalised) || /^::ffff:127(\.\d{1,3}){3}$/.test(normalised);
}
