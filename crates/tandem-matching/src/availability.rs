//! Weekly availability as a bitset of 30-minute slots of the UTC week.
//!
//! Users enter free periods in their own local time. To compare two users
//! we map both onto one shared clock: the UTC week, Monday 00:00 UTC = slot 0,
//! 336 slots of 30 minutes, stored in six `u64`s. Overlap is then an AND and
//! a popcount per word.
//!
//! **DST approximation.** A weekly pattern has no date, so each timezone's UTC
//! offset is taken at one fixed reference instant, Wednesday 2024-01-10
//! 12:00 UTC (the middle of the reference week starting Monday 2024-01-08).
//! That is northern-hemisphere winter: Berlin is UTC+1, London UTC+0,
//! New York UTC-5, Sydney UTC+11 (its summer time). During the rest of the
//! year overlaps between zones with different DST rules can be off by an
//! hour; a fixed week keeps features stable and comparable across profiles.
//!
//! **Rounding.** A slot counts as free when the window covers the slot's
//! midpoint. Windows on half-hour boundaries map exactly; offsets such as
//! UTC+5:45 round to the nearest half hour.

use chrono::{DateTime, Offset, TimeZone};
use chrono_tz::Tz;

use crate::profile::Window;

/// Length of one availability slot in minutes.
pub const SLOT_MINUTES: u16 = 30;
/// Number of slots in one week.
pub const SLOTS_PER_WEEK: usize = 336;

const SLOT: i32 = SLOT_MINUTES as i32;
const HALF_SLOT: i32 = SLOT / 2;
const MINUTES_PER_DAY: i32 = 1440;
const WEEK_SLOTS: i32 = SLOTS_PER_WEEK as i32;
/// Unix time of Wednesday 2024-01-10 12:00:00 UTC, the DST reference instant.
const REFERENCE_UNIX_SECONDS: i64 = 1_704_888_000;

/// Free 30-minute slots of the UTC week (bit `i` of word `i / 64`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct WeekSlots([u64; 6]);

impl WeekSlots {
    /// Slots covered by `windows`, given in local time of `timezone`
    /// (an IANA name; unknown names are treated as UTC). Invalid windows are
    /// skipped. The UTC offset is the one in effect on Wednesday 2024-01-10
    /// 12:00 UTC (northern winter), so DST is only approximated.
    pub fn from_local(windows: &[Window], timezone: &str) -> Self {
        let offset = reference_offset_minutes(parse_timezone(timezone));
        let mut slots = Self::default();
        for w in windows.iter().filter(|w| w.is_valid()) {
            let day = w.day.num_days_from_monday() as i32 * MINUTES_PER_DAY;
            let start = day + i32::from(w.start_minute) - offset;
            let end = day + i32::from(w.end_minute) - offset;
            slots.mark(start, end);
        }
        slots
    }

    /// Marks slots whose midpoint lies in `[start, end)`, in minutes from
    /// Monday 00:00 UTC; values outside the week wrap around.
    fn mark(&mut self, start: i32, end: i32) {
        // First slot whose midpoint (k * 30 + 15) is >= start.
        let mut k = (start - HALF_SLOT + SLOT - 1).div_euclid(SLOT);
        while k * SLOT + HALF_SLOT < end {
            let bit = k.rem_euclid(WEEK_SLOTS) as usize;
            self.0[bit / 64] |= 1 << (bit % 64);
            k += 1;
        }
    }

    /// Number of free slots shared with `other`.
    #[inline]
    pub fn overlap_slots(&self, other: &Self) -> u32 {
        let (a, b) = (&self.0, &other.0);
        (a[0] & b[0]).count_ones()
            + (a[1] & b[1]).count_ones()
            + (a[2] & b[2]).count_ones()
            + (a[3] & b[3]).count_ones()
            + (a[4] & b[4]).count_ones()
            + (a[5] & b[5]).count_ones()
    }

    /// Hours per week shared with `other`.
    pub fn overlap_hours(&self, other: &Self) -> f32 {
        slots_to_hours(self.overlap_slots(other))
    }

    /// Number of free slots.
    pub fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// Whether the given slot (0 = Monday 00:00–00:30 UTC) is free.
    pub fn contains(&self, slot: usize) -> bool {
        slot < SLOTS_PER_WEEK && self.0[slot / 64] & (1 << (slot % 64)) != 0
    }
}

/// Converts a slot count to hours.
pub(crate) fn slots_to_hours(slots: u32) -> f32 {
    slots as f32 * f32::from(SLOT_MINUTES) / 60.0
}

/// Parses an IANA timezone name; anything unknown becomes UTC.
pub fn parse_timezone(name: &str) -> Tz {
    name.trim().parse().unwrap_or(Tz::UTC)
}

/// UTC offset of `tz` in minutes at the reference instant (see module docs).
pub fn reference_offset_minutes(tz: Tz) -> i32 {
    DateTime::from_timestamp(REFERENCE_UNIX_SECONDS, 0).map_or(0, |utc| {
        tz.offset_from_utc_datetime(&utc.naive_utc())
            .fix()
            .local_minus_utc()
            / 60
    })
}

#[cfg(test)]
mod tests {
    use chrono::Weekday;

    use super::*;

    fn window(day: Weekday, from_h: u16, to_h: u16) -> Window {
        Window::new(day, from_h * 60, to_h * 60).expect("valid test window")
    }

    #[test]
    fn reference_offsets_are_winter_offsets() {
        assert_eq!(
            reference_offset_minutes(parse_timezone("Europe/Berlin")),
            60
        );
        assert_eq!(reference_offset_minutes(parse_timezone("Europe/London")), 0);
        assert_eq!(
            reference_offset_minutes(parse_timezone("America/New_York")),
            -300
        );
        assert_eq!(
            reference_offset_minutes(parse_timezone("Asia/Kathmandu")),
            345
        );
        assert_eq!(parse_timezone("Mars/Olympus_Mons"), Tz::UTC);
    }

    #[test]
    fn berlin_and_london_evenings_overlap_two_hours() {
        let berlin = WeekSlots::from_local(&[window(Weekday::Mon, 18, 20)], "Europe/Berlin");
        let london = WeekSlots::from_local(&[window(Weekday::Mon, 17, 19)], "Europe/London");
        assert_eq!(berlin.count(), 4);
        // Monday 17:00 UTC is slot 34.
        assert!(berlin.contains(34) && berlin.contains(37) && !berlin.contains(38));
        assert_eq!(berlin.overlap_hours(&london), 2.0);
    }

    #[test]
    fn same_local_hours_in_tokyo_do_not_overlap_berlin() {
        let berlin = WeekSlots::from_local(&[window(Weekday::Mon, 18, 20)], "Europe/Berlin");
        let tokyo = WeekSlots::from_local(&[window(Weekday::Mon, 18, 20)], "Asia/Tokyo");
        assert_eq!(tokyo.count(), 4);
        assert_eq!(berlin.overlap_slots(&tokyo), 0);
    }

    #[test]
    fn windows_wrap_around_the_week() {
        // Monday 00:00–02:00 in Tokyo (UTC+9) is Sunday 15:00–17:00 UTC.
        let tokyo = WeekSlots::from_local(&[window(Weekday::Mon, 0, 2)], "Asia/Tokyo");
        let sunday_15_utc = 6 * 48 + 30;
        assert!(tokyo.contains(sunday_15_utc) && tokyo.contains(sunday_15_utc + 3));
        assert_eq!(tokyo.count(), 4);
        // Sunday 23:00 – midnight in New York (UTC-5) is Monday 04:00–05:00 UTC.
        let ny = WeekSlots::from_local(&[window(Weekday::Sun, 23, 24)], "America/New_York");
        assert!(ny.contains(8) && ny.contains(9) && ny.count() == 2);
    }

    #[test]
    fn invalid_timezones_and_windows() {
        let bad = Window {
            day: Weekday::Tue,
            start_minute: 600,
            end_minute: 600,
        };
        assert!(WeekSlots::from_local(&[bad], "UTC").count() == 0);
        let utc = WeekSlots::from_local(&[window(Weekday::Mon, 0, 1)], "Not/AZone");
        assert!(utc.contains(0) && utc.contains(1) && utc.count() == 2);
    }
}
