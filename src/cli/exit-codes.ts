/** sysexits(3) codes; systemd's RestartPreventExitStatus=78 stops restart loops on a bad config. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 64;
export const EXIT_SOFTWARE = 70;
/** A file holdfast must create cannot be (a host key's folder not writable): the operator fixes it. */
export const EXIT_CANTCREAT = 73;
export const EXIT_CONFIG = 78;
