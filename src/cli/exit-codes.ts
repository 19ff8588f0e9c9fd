/** sysexits(3) codes; systemd's RestartPreventExitStatus=78 stops restart loops on a bad config. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 64;
export const EXIT_SOFTWARE = 70;
export const EXIT_CONFIG = 78;
