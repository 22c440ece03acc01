package dev.aoepack.repo;

/** The one time format of signed documents, {@code YYYY-MM-DDTHH:MM:SSZ} (§15.4), without java.time. */
final class Timestamps {
  private Timestamps() {}

  /** Milliseconds since the epoch, or -1 when {@code s} is not a real UTC date and time. */
  static long parseMillis(String s) {
    if (!Fields.Pattern.TIMESTAMP.matches(s)) {
      return -1;
    }
    int year = Integer.parseInt(s.substring(0, 4));
    int month = Integer.parseInt(s.substring(5, 7));
    int day = Integer.parseInt(s.substring(8, 10));
    int hour = Integer.parseInt(s.substring(11, 13));
    int minute = Integer.parseInt(s.substring(14, 16));
    int second = Integer.parseInt(s.substring(17, 19));
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)
        || hour > 23 || minute > 59 || second > 59) {
      return -1;
    }
    return ((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute) * 60000L + second * 1000L;
  }

  private static int daysIn(int year, int month) {
    switch (month) {
      case 2:
        return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28;
      case 4:
      case 6:
      case 9:
      case 11:
        return 30;
      default:
        return 31;
    }
  }

  /** Days from 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm). */
  static long daysFromCivil(long y, long m, long d) {
    y -= m <= 2 ? 1 : 0;
    long era = y / 400; // y >= 0: years 1 to 9999 only (Math.floorDiv is Android API 24)
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
  }
}
