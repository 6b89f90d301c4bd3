/*
 * Exporter sequence tracking: losses are counted on forward jumps, with
 * 32-bit wraparound, and never for duplicates, late arrivals or restarts.
 */
#include <criterion/criterion.h>

#include "sensor_int.h"

Test(sensor_seq, starts_the_sequence_at_the_first_message)
{
    struct fl_seq s = {0};

    cr_assert_eq(fl_seq_update(&s, 1000000, 30), 0);
    cr_assert(s.started);
    cr_assert_eq(s.next, 1000030);
}

Test(sensor_seq, counts_nothing_for_messages_in_order)
{
    struct fl_seq s = {0};

    cr_assert_eq(fl_seq_update(&s, 0, 30), 0);
    cr_assert_eq(fl_seq_update(&s, 30, 30), 0);
    cr_assert_eq(fl_seq_update(&s, 60, 5), 0);
    cr_assert_eq(fl_seq_update(&s, 65, 0), 0);
    cr_assert_eq(fl_seq_update(&s, 65, 1), 0);
    cr_assert_eq(s.next, 66);
}

Test(sensor_seq, counts_the_units_missing_before_a_jump)
{
    struct fl_seq s = {0};

    fl_seq_update(&s, 100, 30);
    cr_assert_eq(fl_seq_update(&s, 190, 30), 60);
    cr_assert_eq(s.next, 220);
    cr_assert_eq(fl_seq_update(&s, 220, 30), 0);
}

Test(sensor_seq, follows_the_sequence_across_the_32_bit_wrap)
{
    struct fl_seq s = {0};

    fl_seq_update(&s, 0xfffffff0u, 16);
    cr_assert_eq(s.next, 0);
    cr_assert_eq(fl_seq_update(&s, 0, 30), 0);

    s.started = false;
    fl_seq_update(&s, 0xfffffff0u, 10);
    /* Expected 0xfffffffa; 6 before the wrap and 4 after are missing. */
    cr_assert_eq(fl_seq_update(&s, 4, 1), 10);
    cr_assert_eq(s.next, 5);
}

Test(sensor_seq, counts_the_largest_forward_jump)
{
    struct fl_seq s = {0};

    fl_seq_update(&s, 0, 0);
    cr_assert_eq(fl_seq_update(&s, 0x7fffffffu, 1), 0x7fffffffu);
}

Test(sensor_seq, counts_nothing_for_a_duplicate)
{
    struct fl_seq s = {0};

    fl_seq_update(&s, 500, 30);
    cr_assert_eq(fl_seq_update(&s, 500, 30), 0);
    cr_assert_eq(s.next, 530);
    cr_assert_eq(fl_seq_update(&s, 530, 30), 0);
}

Test(sensor_seq, keeps_its_place_when_a_late_message_arrives)
{
    struct fl_seq s = {0};

    fl_seq_update(&s, 0, 30);
    cr_assert_eq(fl_seq_update(&s, 60, 30), 30);
    /* The missing message arrives late: nothing is counted, and the
     * next message in order is not taken for another gap. */
    cr_assert_eq(fl_seq_update(&s, 30, 30), 0);
    cr_assert_eq(s.next, 90);
    cr_assert_eq(fl_seq_update(&s, 90, 30), 0);
}

Test(sensor_seq, resyncs_without_loss_on_an_exporter_restart)
{
    struct fl_seq s = {0};

    fl_seq_update(&s, 9000000, 30);
    cr_assert_eq(fl_seq_update(&s, 0, 30), 0);
    cr_assert_eq(s.next, 30);
    cr_assert_eq(fl_seq_update(&s, 30, 30), 0);
}

Test(sensor_seq, reads_a_jump_of_half_the_space_as_a_step_back)
{
    struct fl_seq s = {0};

    fl_seq_update(&s, 0, 0);
    cr_assert_eq(fl_seq_update(&s, 0x80000000u, 1), 0);
    cr_assert_eq(s.next, 0x80000001u);

    /* Just behind across the wrap: expected 10, got 0xfffffffe, late. */
    fl_seq_update(&s, 0, 10);
    cr_assert_eq(fl_seq_update(&s, 0xfffffffeu, 1), 0);
    cr_assert_eq(s.next, 10);
}
